import type { StoredDocument } from "./document.ts";
import type { ShardWrite } from "./shard_protocol.ts";
import type { BehindReplica } from "./behind_marks.ts";

/** How the handoff talks to replicas. */
export interface ReplicaIo {
  /** Posts one write; rejects when the replica does not confirm it. */
  send(base: string, body: ShardWrite): Promise<unknown>;
  /** A page of the replica's live documents with ids after `after`, by id. */
  list(base: string, after: string, size: number): Promise<StoredDocument[]>;
}

/** Page size of the anti-entropy listings and writes. */
const REPAIR_PAGE = 1000;

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
 * The queue lives in the coordinator's memory; which replicas are behind
 * is recorded durably by the coordinator (`behind_marks.ts`), and a
 * coordinator restarted with replicas recorded as behind passes them in
 * `options.behind`: they are repaired by anti-entropy (below). The queue
 * is bounded (`maxQueuedDocs` per replica): past it the queue is dropped
 * and the replica is repaired by anti-entropy instead, once it answers: its documents are compared, id by id, with
 * those of a replica of the shard that is not behind, and the differences
 * are written to it (missing or different documents added, extra ones
 * deleted); writes that arrive meanwhile are queued and replayed after the
 * copy (they are idempotent, so one the copy already carried changes
 * nothing).
 */
export class HintedHandoff {
  readonly #queues: Array<Array<ShardWrite[] | null>>;
  readonly #queuedDocs: number[][];
  readonly #overflow: boolean[][];
  readonly #draining = new Set<string>();
  /** Replicas being repaired by anti-entropy (their queue waits for the copy). */
  readonly #repairing = new Set<string>();
  /** Completed anti-entropy repairs, for stats and tests. */
  repairs = 0;
  /** Per shard, the writes in flight (by start number). */
  readonly #open: Array<Set<number>>;
  #nextWrite = 0;
  /** Queued writes being sent right now (never retracted). */
  readonly #inflight = new Set<ShardWrite>();
  #closed = false;
  readonly #timers = new Map<ReturnType<typeof setTimeout>, () => void>();

  /**
   * @param shards replica base URLs, shards[s][r]
   * @param io writes to and lists replicas
   * @param maxQueuedDocs per-replica bound on queued adds + deletes
   * @param options `behind`: replicas known to have missed writes whose
   *   queue is gone (recorded by a coordinator before it restarted): they
   *   stay out of reads and are repaired by anti-entropy at once;
   *   `onCaughtUp`: called when a replica stops being behind.
   */
  constructor(
    readonly shards: readonly (readonly string[])[],
    readonly io: ReplicaIo,
    readonly maxQueuedDocs: number,
    options: {
      behind?: readonly BehindReplica[];
      onCaughtUp?: () => void;
    } = {},
  ) {
    this.#queues = shards.map((r) => r.map(() => null));
    this.#queuedDocs = shards.map((r) => r.map(() => 0));
    this.#overflow = shards.map((r) => r.map(() => false));
    this.#open = shards.map(() => new Set());
    this.#onCaughtUp = options.onCaughtUp ?? (() => {});
    for (const { shard, replica } of options.behind ?? []) {
      this.#overflow[shard]![replica] = true;
      void this.#repair(shard, replica);
    }
  }
  readonly #onCaughtUp: () => void;

  /** The replicas that are behind now (what a coordinator records durably). */
  behindList(): BehindReplica[] {
    const out: BehindReplica[] = [];
    this.#queues.forEach((reps, shard) =>
      reps.forEach((_, replica) => {
        if (this.isBehind(shard, replica)) out.push({ shard, replica });
      })
    );
    return out;
  }

  /** Marks the start of a write to shard s (see {@link endWrite}). */
  beginWrite(s: number): number {
    const n = this.#nextWrite++;
    this.#open[s]!.add(n);
    return n;
  }

  /** Marks the end of a write (every replica answered or failed, queues updated). */
  endWrite(s: number, n: number): void {
    this.#open[s]!.delete(n);
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
    if (
      this.#queuedDocs[s]![r]! + docs > this.maxQueuedDocs &&
      !this.#repairing.has(`${s}/${r}`)
    ) {
      // Too far behind to replay from memory: repair it from a healthy replica.
      this.#overflow[s]![r] = true;
      this.#queues[s]![r] = null;
      this.#queuedDocs[s]![r] = 0;
      void this.#repair(s, r);
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
      this.#onCaughtUp();
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
    if (this.#draining.has(key) || this.#repairing.has(key)) return;
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
          this.#onCaughtUp();
          return;
        }
        const [batch, n] = nextBatch(q);
        const covered = q.slice(0, n);
        for (const w of covered) this.#inflight.add(w);
        try {
          await this.io.send(this.shards[s]![r]!, batch);
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

  /**
   * Anti-entropy for replica r of shard s: waits until it and a replica of
   * the shard that is not behind both answer, then queues new writes (not
   * replayed yet), copies the differences and finally replays the queue.
   */
  async #repair(s: number, r: number): Promise<void> {
    const key = `${s}/${r}`;
    if (this.#repairing.has(key)) return;
    this.#repairing.add(key);
    try {
      for (;;) {
        if (this.#closed) return;
        const source = this.shards[s]!.findIndex((_, i) =>
          i !== r && !this.isBehind(s, i)
        );
        if (source >= 0) {
          try {
            await this.io.list(this.shards[s]![r]!, "", 1); // reachable?
            // From here on, writes for it queue up behind the copy.
            this.#overflow[s]![r] = false;
            this.#queues[s]![r] ??= [];
            // Writes that started before the queue existed were not queued
            // for it: let them land on the source before it is listed.
            const mark = this.#nextWrite;
            for (let i = 0; i < 30_000; i++) {
              if (![...this.#open[s]!].some((n) => n < mark)) break;
              await this.#sleep(10);
            }
            await this.#copy(this.shards[s]![source]!, this.shards[s]![r]!);
            this.repairs++;
            break;
          } catch {
            // Either side failed: try again (writes keep queueing meanwhile).
          }
        }
        await this.#sleep(RETRY_MS);
      }
    } finally {
      this.#repairing.delete(key);
    }
    this.kick(s, r);
  }

  /** Makes `target`'s documents equal to `source`'s, page by page. */
  async #copy(source: string, target: string): Promise<void> {
    const have = new Map<string, string>();
    for (let after = "";;) {
      const page = await this.io.list(target, after, REPAIR_PAGE);
      if (page.length === 0) break;
      for (const d of page) have.set(d.id, JSON.stringify(d));
      after = page[page.length - 1]!.id;
    }
    let add: StoredDocument[] = [];
    for (let after = "";;) {
      const page = await this.io.list(source, after, REPAIR_PAGE);
      if (page.length === 0) break;
      for (const d of page) {
        if (have.get(d.id) !== JSON.stringify(d)) add.push(d);
        have.delete(d.id);
      }
      if (add.length >= REPAIR_PAGE) {
        await this.io.send(target, { add, delete: [] });
        add = [];
      }
      after = page[page.length - 1]!.id;
    }
    if (add.length > 0) await this.io.send(target, { add, delete: [] });
    const extra = [...have.keys()];
    for (let i = 0; i < extra.length; i += REPAIR_PAGE) {
      await this.io.send(target, {
        add: [],
        delete: extra.slice(i, i + REPAIR_PAGE),
      });
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
