import { copyInto } from "./bytes.ts";

/**
 * Bump allocation of small byte arrays from shared chunks, as RocksDB's
 * memtable arena does: every `new Uint8Array` (any size, under this
 * Deno's V8: 0.3–1 µs each, against about 50 ns for a `subarray`) gets
 * its own backing store, whose allocation and later sweep cost more than
 * the copy into it, so small arrays are carved out of one larger buffer
 * instead. Nothing is ever reused: a chunk is freed by the garbage
 * collector once no array carved from it is referenced (for commit
 * records, once the log has written them). An
 * array handed out keeps its whole chunk alive: arenas whose arrays go to
 * callers (read results) use small chunks. The arrays are views: their
 * `byteOffset` is not 0 and their `buffer` is the shared chunk.
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

  /** A copy of `b` carved from the arena. */
  copy(b: Uint8Array): Uint8Array {
    const out = this.alloc(b.length);
    copyInto(out, 0, b);
    return out;
  }
}
