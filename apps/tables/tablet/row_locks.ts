import { keyString } from "@strata/lsm";

/**
 * In-process exclusive locks per row key: writes to one row run one after
 * another (so a check-and-mutate's read and write are not interleaved with
 * another write to the row, and write timestamps follow log order per
 * row); different rows do not wait for each other.
 */
export class RowLocks {
  /**
   * Per locked row, the runs waiting for it, in arrival order (null: none
   * yet, so an uncontended lock allocates no array).
   */
  #queues = new Map<string, (() => void)[] | null>();

  /**
   * Runs `fn` holding the lock on `row`; the lock is released when the
   * promise `fn` returns settles. An uncontended lock costs two map
   * operations and no extra promise or turn of the event loop: `fn`
   * starts at once, in the caller's turn.
   */
  with<T>(row: Uint8Array, fn: () => Promise<T>): Promise<T> {
    const k = keyOf(row);
    const waiting = this.#queues.get(k);
    if (waiting === undefined) {
      this.#queues.set(k, null);
      return this.#run(k, fn);
    }
    return new Promise<T>((resolve, reject) => {
      const run = () => void this.#run(k, fn).then(resolve, reject);
      if (waiting === null) this.#queues.set(k, [run]);
      else waiting.push(run);
    });
  }

  #run<T>(k: string, fn: () => Promise<T>): Promise<T> {
    let p: Promise<T>;
    try {
      p = fn();
    } catch (e) {
      p = Promise.reject(e);
    }
    const release = () => {
      const next = this.#queues.get(k)?.shift();
      if (next === undefined) this.#queues.delete(k);
      else next();
    };
    p.then(release, release);
    return p;
  }

  /** Rows locked or waited for (for tests). */
  get size(): number {
    return this.#queues.size;
  }
}

/** The row as a map key: one char per byte. */
const keyOf = keyString;
