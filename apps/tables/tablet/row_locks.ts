/**
 * In-process exclusive locks per row key: writes to one row run one after
 * another (so a check-and-mutate's read and write are not interleaved with
 * another write to the row, and write timestamps follow log order per
 * row); different rows do not wait for each other, unless their keys
 * hash alike.
 *
 * A lock is taken on a 30-bit hash of the row (lock striping): two rows
 * with the same hash share one lock, which only makes one wait for the
 * other (each run holds one lock, so no deadlock). A small-integer map
 * key costs far less than a string of the row per write (building and
 * hashing it was most of a put's locking cost).
 */
export class RowLocks {
  /**
   * Per locked hash, the runs waiting for it, in arrival order (null: none
   * yet, so an uncontended lock allocates no array).
   */
  #queues = new Map<number, (() => void)[] | null>();

  /**
   * Runs `fn` holding the lock on `row`; the lock is released when the
   * promise `fn` returns settles. An uncontended lock costs two map
   * operations and no extra promise or turn of the event loop: `fn`
   * starts at once, in the caller's turn. `fn` gets the row's hash
   * ({@link rowHash}), so the caller need not compute it again.
   */
  with<T>(row: Uint8Array, fn: (hash: number) => Promise<T>): Promise<T> {
    const k = rowHash(row);
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

  #run<T>(k: number, fn: (hash: number) => Promise<T>): Promise<T> {
    let p: Promise<T>;
    try {
      p = fn(k);
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

  /** Row hashes locked or waited for (for tests). */
  get size(): number {
    return this.#queues.size;
  }
}

/** FNV-1a of the row's bytes, cut to 30 bits (a small integer). */
export function rowHash(row: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < row.length; i++) h = Math.imul(h ^ row[i]!, 0x01000193);
  return h & 0x3fffffff;
}
