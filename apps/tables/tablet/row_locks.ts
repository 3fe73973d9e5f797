/**
 * In-process exclusive locks per row key: writes to one row run one after
 * another (so a check-and-mutate's read and write are not interleaved with
 * another write to the row, and write timestamps follow log order per
 * row); different rows do not wait for each other.
 */
export class RowLocks {
  #tails = new Map<string, Promise<void>>();

  /** Runs `fn` holding the lock on `row`. */
  async with<T>(row: Uint8Array, fn: () => Promise<T>): Promise<T> {
    const k = keyOf(row);
    const prev = this.#tails.get(k);
    let release!: () => void;
    const mine = new Promise<void>((r) => release = r);
    this.#tails.set(k, mine);
    try {
      if (prev !== undefined) await prev;
      return await fn();
    } finally {
      release();
      if (this.#tails.get(k) === mine) this.#tails.delete(k);
    }
  }

  /** Rows locked or waited for (for tests). */
  get size(): number {
    return this.#tails.size;
  }
}

const latin1 = new TextDecoder("latin1");

function keyOf(row: Uint8Array): string {
  return latin1.decode(row);
}
