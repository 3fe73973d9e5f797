/**
 * When a busy server log starts its next block: the group-commit rule of
 * MySQL's `binlog_group_commit_sync_delay` with
 * `binlog_group_commit_sync_no_delay_count`, and of PostgreSQL's
 * `commit_delay` with `commit_siblings`.
 *
 * Without it, a log under many writers settles into two cohorts: the
 * writers the last block acknowledged are still on their way back (their
 * client answers, sends its next write) when the next block starts, so
 * each block carries about half of the writers, and everything a block
 * costs (a GFS record append to every replica, its fdatasyncs, the
 * master's seal and fence check) is paid twice per round of writes.
 *
 * The rule counts the writers of the last round: the writes the last
 * block carried plus the writes that queued while it was in flight (those
 * are already waiting for the next block). Once a round counted at least
 * `busyWrites` (several writers share this log), the next block
 * waits until that many writes are queued (every writer the last block
 * acknowledged is back), or for at most a fraction of the time the last
 * block took (and never more than `maxWaitMs`), whichever comes first.
 * Counting only the writes of the last block (the rule before) fed on
 * itself: the writers that had queued during a block were already in the
 * count, so the block went as soon as as many of the returning writers
 * had come back as had been late, and the rest were late again — blocks
 * stayed at whatever size they had (56-70 of ~85 writers a server at 256
 * clients).
 *
 * A log whose round counted fewer than `busyWrites` (16) never waits (a
 * gather from 3 writers ran rarely at 16 clients, ~5 writers a log:
 * 8-39 gathers in 500-1,800 blocks a line, 0.02-0.17 ms a block, and
 * gained nothing measurable there). Nor does a log that stayed idle for
 * longer than its last block took (its writers are not coming back as a
 * group). A busy
 * log's writers wait at most as long again as a block takes
 * (`maxFraction` 1) per round, and only while their peers have not come
 * back; a writer that left costs its peers one such wait, after which it
 * is no longer counted.
 *
 * {@link BlockGather.lone} tells {@link ServerLog} which turn to yield
 * before a block: a log whose last round had one writer sends at once
 * (an immediate: a lone writer at 1 client does not wait for a timer);
 * any other yields a timer turn (>= 1 ms), which lets the writers of a
 * small log arrive together — an idle spell does not make such a log
 * lone (when it did, the first writer back went alone and the others a
 * block later). Measured figures: apps/tables/README.md, "Group commit
 * of a busy log".
 *
 * Pure: no clock, no timers; {@link ServerLog} measures and waits.
 */
export interface BlockGatherOptions {
  /**
   * A log whose last round (a block's writes and those queued during it)
   * counted this many writes or more is busy: it gathers (default 16).
   */
  busyWrites?: number;
  /** Longest wait as a fraction of the last block's time (default 1). */
  maxFraction?: number;
  /** Longest wait, ms (default 10). */
  maxWaitMs?: number;
}

/** How long to gather before the next block; see {@link BlockGather}. */
export interface GatherPlan {
  /** Start the block once this many writes are queued… */
  writes: number;
  /** …or once this many milliseconds have passed. */
  waitMs: number;
}

/** The rule above, fed with each block's size, time and what queued meanwhile. */
export class BlockGather {
  readonly #busy: number;
  readonly #fraction: number;
  readonly #maxMs: number;
  /** Writers of the last round: the last block's writes and those queued during it. */
  #round = 0;
  /** The last round's writers, kept through idle spells. */
  #lastRound = 0;
  #lastMs = 0;
  #idleAt: number | undefined;

  constructor(opts: BlockGatherOptions = {}) {
    this.#busy = opts.busyWrites ?? 16;
    this.#fraction = opts.maxFraction ?? 1;
    this.#maxMs = opts.maxWaitMs ?? 10;
  }

  /**
   * A block carrying `writes` writes took `ms` (append and checks); at its
   * end `queued` writes are waiting for the next one (those that arrived
   * while it was in flight, and any it had no room for).
   */
  blockDone(writes: number, ms: number, queued: number): void {
    this.#round = this.#lastRound = writes + queued;
    this.#lastMs = ms;
  }

  /** The log has no write left to send, at monotonic time `now` (ms). */
  idle(now: number): void {
    this.#idleAt = now;
  }

  /**
   * A write arrived at monotonic `now` after {@link idle}: an idle spell
   * longer than the last block took ends the busy state. True if so.
   */
  woke(now: number): boolean {
    const spell = this.#idleAt !== undefined &&
      now - this.#idleAt > this.#lastMs;
    if (spell) this.#round = 0;
    this.#idleAt = undefined;
    return spell;
  }

  /** Whether the last round, idle spells aside, had at most one writer. */
  get lone(): boolean {
    return this.#lastRound <= 1;
  }

  /** Whether the last round counted `busyWrites` or more (see {@link plan}). */
  get busy(): boolean {
    return this.#round >= this.#busy;
  }

  /**
   * What to wait for with `queued` writes waiting (`full`: they fill a
   * block already), or undefined to start the next block now.
   */
  plan(queued: number, full = false): GatherPlan | undefined {
    if (full || !this.busy || queued >= this.#round) {
      return undefined;
    }
    const waitMs = Math.min(this.#maxMs, this.#lastMs * this.#fraction);
    if (!(waitMs > 0)) return undefined;
    return { writes: this.#round, waitMs };
  }
}
