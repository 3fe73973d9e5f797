import type { ShardWrite } from "./shard_protocol.ts";

/** Most documents replayed to a replica in one request. */
const REPLAY_BATCH_DOCS = 5000;
/** Wait between replay attempts while a replica is still unreachable (ms). */
const RETRY_MS = 200;

/**
 * Hinted handoff (as in Dynamo and Cassandra): the coordinator keeps, per
 * replica, the writes it acknowledged without that replica (down,
 * refused, timed out), and replays them in order once it answers again.
 * Until its queue is empty the replica is "behind": the coordinator sends
 * it no reads, and new writes for it join the end of its queue so they
 * apply after the ones it missed. Writes are idempotent (an add replaces
 * the document, a delete removes it), so replaying a write the replica
 * had in fact applied before it failed changes nothing.
 *
 * The queue lives in the coordinator's memory: it is bounded
 * (`maxQueuedDocs` per replica; past it the replica is marked as needing a
 * rebuild and stays out of reads) and is lost if the coordinator restarts.
 */
export class HintedHandoff {
  readonly #queues: Array<Array<ShardWrite[] | null>>;
  readonly #queuedDocs: number[][];
  readonly #overflow: boolean[][];
  readonly #draining = new Set<string>();
  /** Queued writes being sent right now (never retracted). */
  readonly #inflight = new Set<ShardWrite>();
  #closed = false;
  readonly #timers = new Map<ReturnType<typeof setTimeout>, () => void>();

  /**
   * @param shards replica base URLs, shards[s][r]
   * @param send posts one write to a replica; rejects when it is not confirmed
   * @param maxQueuedDocs per-replica bound on queued adds + deletes
   */
  constructor(
    readonly shards: readonly (readonly string[])[],
    readonly send: (base: string, body: ShardWrite) => Promise<unknown>,
    readonly maxQueuedDocs: number,
  ) {
    this.#queues = shards.map((r) => r.map(() => null));
    this.#queuedDocs = shards.map((r) => r.map(() => 0));
    this.#overflow = shards.map((r) => r.map(() => false));
  }

  /** Whether replica `r` of shard `s` has writes it has not applied yet. */
  isBehind(s: number, r: number): boolean {
    return this.#queues[s]![r] !== null || this.#overflow[s]![r]!;
  }

  /** Documents (adds + deletes) waiting for replica r of shard s; -1 after an overflow. */
  queued(s: number, r: number): number {
    return this.#overflow[s]![r] ? -1 : this.#queuedDocs[s]![r]!;
  }

  /** Replicas currently behind. */
  behindCount(): number {
    let n = 0;
    this.#queues.forEach((reps, s) =>
      reps.forEach((_, r) => {
        if (this.isBehind(s, r)) n++;
      })
    );
    return n;
  }

  /** Queues a write replica r of shard s missed and starts replaying to it. */
  enqueue(s: number, r: number, body: ShardWrite): void {
    if (this.#overflow[s]![r]) return;
    const docs = body.add.length + body.delete.length;
    if (this.#queuedDocs[s]![r]! + docs > this.maxQueuedDocs) {
      // Too far behind to replay from memory: it needs a rebuild.
      this.#overflow[s]![r] = true;
      this.#queues[s]![r] = null;
      this.#queuedDocs[s]![r] = 0;
      return;
    }
    (this.#queues[s]![r] ??= []).push(body);
    this.#queuedDocs[s]![r]! += docs;
  }

  /**
   * Starts (or keeps) replaying to replica r of shard s. The coordinator
   * calls it once a write's outcome is known, so a write that failed
   * everywhere can be retracted before it is ever replayed.
   */
  kick(s: number, r: number): void {
    if (this.#queues[s]![r] !== null) void this.#drain(s, r);
  }

  /**
   * Takes back a queued write that no replica confirmed (the client was
   * told it failed), unless it is already being replayed.
   */
  retract(s: number, r: number, body: ShardWrite): void {
    const q = this.#queues[s]![r];
    if (!q) return;
    const i = q.indexOf(body);
    if (i >= 0 && !this.#inflight.has(body)) {
      q.splice(i, 1);
      this.#queuedDocs[s]![r]! -= body.add.length + body.delete.length;
    }
    if (q.length === 0 && !this.#draining.has(`${s}/${r}`)) {
      this.#queues[s]![r] = null;
      this.#queuedDocs[s]![r] = 0;
    }
  }

  /** {@link enqueue}, as a rejected confirmation (the replica did not confirm the write). */
  enqueueBehind(s: number, r: number, body: ShardWrite): Promise<never> {
    this.enqueue(s, r, body);
    return Promise.reject(
      new Error(`replica ${s}/${r} is catching up; the write is queued`),
    );
  }

  /** Replays queued writes in order until the queue is empty (or close()). */
  async #drain(s: number, r: number): Promise<void> {
    const key = `${s}/${r}`;
    if (this.#draining.has(key)) return;
    this.#draining.add(key);
    try {
      for (;;) {
        if (this.#closed) return;
        const q = this.#queues[s]![r];
        if (q === null || q === undefined) return;
        if (q.length === 0) {
          // Caught up: reads may go to it again.
          this.#queues[s]![r] = null;
          this.#queuedDocs[s]![r] = 0;
          return;
        }
        const [batch, n] = nextBatch(q);
        const covered = q.slice(0, n);
        for (const w of covered) this.#inflight.add(w);
        try {
          await this.send(this.shards[s]![r]!, batch);
        } catch {
          await this.#sleep(RETRY_MS);
          continue;
        } finally {
          for (const w of covered) this.#inflight.delete(w);
        }
        // Only the replayed writes leave the queue; writes queued meanwhile stay.
        q.splice(0, n);
        this.#queuedDocs[s]![r]! -= batch.add.length + batch.delete.length;
      }
    } finally {
      this.#draining.delete(key);
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.#timers.delete(t);
        resolve();
      }, ms);
      this.#timers.set(t, resolve);
    });
  }

  /** Stops replaying (pending waits end at once). */
  close(): Promise<void> {
    this.#closed = true;
    for (const [t, resolve] of this.#timers) {
      clearTimeout(t);
      resolve();
    }
    this.#timers.clear();
    return Promise.resolve();
  }
}

/**
 * The next request to replay: consecutive add-only writes merged (up to
 * REPLAY_BATCH_DOCS documents), or one write with deletes on its own: a
 * shard applies a write's adds before its deletes, so merging across a
 * delete could reorder a delete and a later re-add of the same id.
 * @returns the request and how many queued writes it covers.
 */
export function nextBatch(q: readonly ShardWrite[]): [ShardWrite, number] {
  const first = q[0]!;
  if (first.delete.length > 0) return [first, 1];
  const add = [...first.add];
  let n = 1;
  while (
    n < q.length && q[n]!.delete.length === 0 &&
    add.length + q[n]!.add.length <= REPLAY_BATCH_DOCS
  ) {
    add.push(...q[n]!.add);
    n++;
  }
  return [{ add, delete: [] }, n];
}
