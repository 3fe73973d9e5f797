/**
 * Bump allocation of small byte arrays from shared chunks, as RocksDB's
 * memtable arena does: a typed array over 64 bytes gets its own
 * off-heap backing store, whose allocation and later sweep cost more than
 * the copy into it, so small arrays are carved out of one larger buffer
 * instead. Nothing is ever reused: a chunk is freed by the garbage
 * collector once no array carved from it is referenced (for the commit
 * records a memtable keeps views into, when the memtable is gone).
 */
export class Arena {
  readonly #chunkBytes: number;
  #chunk = new Uint8Array(0);
  #used = 0;

  /** @param chunkBytes size of each chunk; arrays over a quarter of it get their own. */
  constructor(chunkBytes = 256 * 1024) {
    this.#chunkBytes = chunkBytes;
  }

  /** A zero-filled array of `n` bytes, never handed out before. */
  alloc(n: number): Uint8Array {
    if (n > this.#chunkBytes >> 2) return new Uint8Array(n);
    if (this.#used + n > this.#chunk.length) {
      this.#chunk = new Uint8Array(this.#chunkBytes);
      this.#used = 0;
    }
    return this.#chunk.subarray(this.#used, this.#used += n);
  }
}
