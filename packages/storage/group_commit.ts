/**
 * Group commit: callers submit items one by one; while one flush (write +
 * sync) is in flight, newly submitted items wait and are then flushed
 * together by the next one. Each caller's promise settles only when the
 * flush that covers its item has finished, so one `fdatasync` acknowledges
 * a whole batch of concurrent appenders.
 *
 * Exclusive tasks (truncation, segment roll, compaction swap) run between
 * flushes, in submission order, with no flush in flight.
 *
 * The class owns no file: the owner passes the flush function, which keeps
 * the batching logic testable without disk I/O.
 */
export class GroupCommit<T, R> {
  #queue: Array<Pending<T, R>> = [];
  #running = false;
  #idleWaiters: Array<() => void> = [];
  readonly #flush: (items: T[]) => Promise<R[]>;
  readonly #maxBatch: number;
  readonly #gatherTurns: number;

  /**
   * @param flush writes (and syncs) a batch; returns one result per item in
   *   order. A throw rejects every item of the batch with that error.
   * @param maxBatch most items per flush (default 65536).
   * @param gatherTurns before a flush, wait until nothing has been
   *   submitted for this many microtask turns (at most 32 times as many in
   *   all; default 0: one turn). For a flush that holds the event loop
   *   (a synchronous sync), when nothing submitted during it can join the
   *   next one: submitters chained through promises, each a few turns
   *   after the last, then still share a flush.
   */
  constructor(
    flush: (items: T[]) => Promise<R[]>,
    maxBatch = 65536,
    gatherTurns = 0,
  ) {
    this.#flush = flush;
    this.#maxBatch = maxBatch;
    this.#gatherTurns = gatherTurns;
  }

  /** Items and tasks waiting or in flight. */
  get pending(): number {
    return this.#queue.length;
  }

  /** True while anything is queued or a flush or task is in flight. */
  get busy(): boolean {
    return this.#running || this.#queue.length > 0;
  }

  /** Queues `item`; resolves with its result once a flush covered it. */
  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#queue.push({ kind: "item", item, resolve, reject });
      this.#kick();
    });
  }

  /** Runs `task` after everything submitted before it, with no flush in flight. */
  exclusive<V>(task: () => Promise<V>): Promise<V> {
    return new Promise<V>((resolve, reject) => {
      this.#queue.push({
        kind: "task",
        run: async () => resolve(await task()),
        reject,
      });
      this.#kick();
    });
  }

  /** Resolves when nothing is queued or in flight. */
  idle(): Promise<void> {
    if (!this.#running && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #kick(): void {
    if (this.#running) return;
    this.#running = true;
    // A microtask delay lets every append made in the same tick join the batch.
    queueMicrotask(() => void this.#loop());
  }

  async #loop(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        if (this.#gatherTurns > 0) await this.#gather();
        const head = this.#queue[0]!;
        if (head.kind === "task") {
          this.#queue.shift();
          try {
            await head.run();
          } catch (e) {
            head.reject(e);
          }
          continue;
        }
        let n = 0;
        while (
          n < this.#queue.length && n < this.#maxBatch &&
          this.#queue[n]!.kind === "item"
        ) n++;
        const batch = this.#queue.splice(0, n) as Array<Item<T, R>>;
        try {
          const results = await this.#flush(batch.map((b) => b.item));
          batch.forEach((b, i) => b.resolve(results[i]!));
        } catch (e) {
          for (const b of batch) b.reject(e);
        }
      }
    } finally {
      this.#running = false;
      const waiters = this.#idleWaiters.splice(0);
      for (const w of waiters) w();
    }
  }

  /** Waits until the queue has not grown for `gatherTurns` microtask turns. */
  async #gather(): Promise<void> {
    const most = this.#gatherTurns * 32;
    let seen = this.#queue.length;
    for (let quiet = 0, turns = 0; quiet < this.#gatherTurns && turns < most;) {
      await undefined;
      turns++;
      if (this.#queue.length === seen) quiet++;
      else {
        seen = this.#queue.length;
        quiet = 0;
      }
    }
  }
}

interface Item<T, R> {
  kind: "item";
  item: T;
  resolve: (r: R) => void;
  reject: (e: unknown) => void;
}

interface Task {
  kind: "task";
  run: () => Promise<void>;
  reject: (e: unknown) => void;
}

type Pending<T, R> = Item<T, R> | Task;
