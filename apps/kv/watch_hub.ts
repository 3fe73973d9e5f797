import type { WatchEvent } from "./kv_state_machine.ts";

/** Why a watch cannot be served or was ended. */
export class WatchError extends Error {
  /** `compacted`: the start revision is older than the history kept; `lagging`: the watcher fell too far behind. */
  readonly code: "compacted" | "lagging";
  /** For `compacted`: the oldest revision a watch may start from. */
  readonly oldestRevision: number;

  /** @param code why; @param oldestRevision the first revision still available. */
  constructor(
    code: "compacted" | "lagging",
    message: string,
    oldestRevision: number,
  ) {
    super(message);
    this.name = "WatchError";
    this.code = code;
    this.oldestRevision = oldestRevision;
  }
}

interface Subscriber {
  prefix: string;
  queue: WatchEvent[];
  wake?: () => void;
  failed?: WatchError;
}

/**
 * Fans committed changes out to watchers. It keeps the last `capacity`
 * events so a watcher can resume from a revision (etcd's watch with
 * start_revision); older starts get a `compacted` error rather than a
 * silent gap. A watcher more than `maxQueued` events behind is ended with
 * `lagging` instead of growing memory without bound.
 */
export class WatchHub {
  #history: WatchEvent[] = [];
  #start = 0;
  #subscribers = new Set<Subscriber>();
  /** Revision of the newest change applied (0 before any). */
  #current = 0;
  /** Everything at or below this revision is known (applied), changed or not. */
  #floor = 0;
  /** Highest revision of an evicted event, or of an installed snapshot (0: none). */
  #evictedUpTo = 0;
  /** Told after every publish, advance and restart (learner streams pull from here). */
  #listeners = new Set<() => void>();

  /**
   * @param capacity events kept for resumption.
   * @param maxQueued events a watcher may lag before it is ended.
   */
  constructor(readonly capacity = 10_000, readonly maxQueued = 10_000) {}

  /** Number of open watches. */
  get watchers(): number {
    return this.#subscribers.size;
  }

  /**
   * Oldest revision a new watch may start from: the history holds every
   * change after the last one evicted (or after the snapshot the member
   * installed). A transaction's changes share a revision, so a revision
   * evicted in part is not offered either.
   */
  get oldestRevision(): number {
    return this.#evictedUpTo + 1;
  }

  /** Records that everything up to `revision` has been applied, changed or not. */
  advanceTo(revision: number): void {
    if (revision > this.#floor) this.#floor = revision;
    this.#notify();
  }

  /**
   * Forgets the history: the state jumped to `revision` (a snapshot was
   * installed), so the changes before it are unknown here. Open watches
   * end with `compacted` rather than miss them silently; new ones may
   * start after `revision`.
   */
  restart(revision: number): void {
    this.#history = [];
    this.#start = 0;
    this.#floor = revision;
    this.#evictedUpTo = revision;
    for (const s of this.#subscribers) {
      s.failed ??= new WatchError(
        "compacted",
        `the member installed a snapshot at revision ${revision}; changes before it are gone`,
        revision + 1,
      );
      s.wake?.();
    }
    this.#notify();
  }

  /**
   * Calls `fn` (synchronously) after every change to the history or the
   * applied revision. @returns a function that removes it.
   */
  addListener(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  #notify(): void {
    for (const fn of this.#listeners) fn();
  }

  /**
   * The changes under `prefix` at revision `from` or later, from the
   * history kept, or undefined when `from` is older than it (compacted).
   */
  eventsSince(prefix: string, from: number): WatchEvent[] | undefined {
    if (from < this.oldestRevision) return undefined;
    // Binary search for the first event at `from` or later (revisions ascend).
    let lo = this.#start;
    let hi = this.#history.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#history[mid]!.revision < from) lo = mid + 1;
      else hi = mid;
    }
    const out: WatchEvent[] = [];
    for (let i = lo; i < this.#history.length; i++) {
      const e = this.#history[i]!;
      if (e.key.startsWith(prefix)) out.push(e);
    }
    return out;
  }

  /** Publishes changes committed at increasing revisions. */
  publish(events: readonly WatchEvent[]): void {
    for (const e of events) {
      this.#history.push(e);
      this.#current = e.revision;
      if (e.revision > this.#floor) this.#floor = e.revision;
      for (const s of this.#subscribers) {
        if (!e.key.startsWith(s.prefix) || s.failed) continue;
        if (s.queue.length >= this.maxQueued) {
          s.failed = new WatchError(
            "lagging",
            `watcher fell ${this.maxQueued} events behind`,
            this.oldestRevision,
          );
        } else s.queue.push(e);
        s.wake?.();
      }
    }
    const live = this.#history.length - this.#start;
    if (live > this.capacity) {
      this.#start += live - this.capacity;
      this.#evictedUpTo = this.#history[this.#start - 1]!.revision;
      // Compact the array now and then rather than on every event.
      if (this.#start > this.capacity) {
        this.#history = this.#history.slice(this.#start);
        this.#start = 0;
      }
    }
    this.#notify();
  }

  /**
   * Streams every change under `prefix` from revision `from` (inclusive; or
   * only new changes when omitted) until `signal` aborts.
   * @throws WatchError `compacted` when `from` is older than the history kept.
   */
  async *watch(
    prefix: string,
    from: number | undefined,
    signal: AbortSignal,
  ): AsyncGenerator<WatchEvent> {
    const sub: Subscriber = { prefix, queue: [] };
    if (from !== undefined && from <= this.#floor) {
      if (from < this.oldestRevision) {
        throw new WatchError(
          "compacted",
          `revision ${from} is compacted; the oldest available is ${this.oldestRevision}`,
          this.oldestRevision,
        );
      }
      for (let i = this.#start; i < this.#history.length; i++) {
        const e = this.#history[i]!;
        if (e.revision >= from && e.key.startsWith(prefix)) sub.queue.push(e);
      }
    }
    this.#subscribers.add(sub);
    const onAbort = () => sub.wake?.();
    signal.addEventListener("abort", onAbort);
    try {
      while (!signal.aborted) {
        if (sub.queue.length > 0) {
          const batch = sub.queue;
          sub.queue = [];
          for (const e of batch) yield e;
          continue;
        }
        if (sub.failed) throw sub.failed;
        await new Promise<void>((resolve) => (sub.wake = resolve));
        sub.wake = undefined;
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      this.#subscribers.delete(sub);
    }
  }

  /** Revision of the newest change published. */
  get currentRevision(): number {
    return this.#current;
  }
}
