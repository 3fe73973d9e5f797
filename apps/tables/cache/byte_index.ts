/**
 * `byte_index.ts`: a hash index of a memory tablet's rows that is looked
 * up by key BYTES in place (a range of the RESP parser's buffer), so the
 * hot path (GET/SET of `redis-benchmark`) finds a row without building a
 * key string or a view per command. Rows are keyed by their latin1 string
 * `k` (one char per byte), and a probe compares the bytes with the chars.
 *
 * Open addressing with linear probing and backward-shift deletion (no
 * tombstones), at most half full. The hash is FNV-1a over the bytes; the
 * same value is computed from the latin1 string.
 */

/** What the index holds: a row with its key as a latin1 string. */
export interface Keyed {
  readonly k: string;
}

/** FNV-1a of `len` bytes of `b` at `off`. */
export function hashBytes(b: Uint8Array, off: number, len: number): number {
  let h = 0x811c9dc5;
  for (let i = off, end = off + len; i < end; i++) {
    h = Math.imul(h ^ b[i]!, 0x01000193);
  }
  return h | 0;
}

/** FNV-1a of a latin1 string's chars (equal to {@link hashBytes} of its bytes). */
export function hashLatin1(k: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < k.length; i++) {
    h = Math.imul(h ^ k.charCodeAt(i), 0x01000193);
  }
  return h | 0;
}

/** Rows by key bytes. */
export class ByteIndex<R extends Keyed> {
  #rows: (R | undefined)[] = new Array(16).fill(undefined);
  #hashes = new Int32Array(16);
  #mask = 15;
  #size = 0;

  /** Rows held. */
  get size(): number {
    return this.#size;
  }

  /** The row whose key is `len` bytes of `b` at `off`, or undefined. */
  getAt(b: Uint8Array, off: number, len: number): R | undefined {
    const h = hashBytes(b, off, len);
    const rows = this.#rows;
    const hashes = this.#hashes;
    const mask = this.#mask;
    for (let i = h & mask;; i = (i + 1) & mask) {
      const r = rows[i];
      if (r === undefined) return undefined;
      if (hashes[i] !== h) continue;
      const k = r.k;
      if (k.length !== len) continue;
      let j = 0;
      while (j < len && k.charCodeAt(j) === b[off + j]) j++;
      if (j === len) return r;
    }
  }

  /** Adds `r` (its key must not be held). */
  add(r: R): void {
    if ((this.#size + 1) * 2 > this.#rows.length) this.#grow();
    this.#insert(r, hashLatin1(r.k));
    this.#size++;
  }

  /** Puts `next` where `prev` (the same key) was. */
  replace(prev: R, next: R): void {
    const i = this.#slotOf(prev);
    if (i >= 0) this.#rows[i] = next;
    else this.add(next);
  }

  /** Removes `r` (no-op when not held). */
  remove(r: R): void {
    let i = this.#slotOf(r);
    if (i < 0) return;
    const rows = this.#rows;
    const hashes = this.#hashes;
    const mask = this.#mask;
    // Backward shift: move later rows of the probe run into the hole
    // when their home slot is not between the hole and them.
    for (let j = (i + 1) & mask;; j = (j + 1) & mask) {
      const x = rows[j];
      if (x === undefined) break;
      const home = hashes[j]! & mask;
      const between = i <= j ? i < home && home <= j : i < home || home <= j;
      if (between) continue;
      rows[i] = x;
      hashes[i] = hashes[j]!;
      i = j;
    }
    rows[i] = undefined;
    this.#size--;
  }

  /** Empties the index. */
  clear(): void {
    this.#rows = new Array(16).fill(undefined);
    this.#hashes = new Int32Array(16);
    this.#mask = 15;
    this.#size = 0;
  }

  #slotOf(r: R): number {
    const h = hashLatin1(r.k);
    const rows = this.#rows;
    const mask = this.#mask;
    for (let i = h & mask;; i = (i + 1) & mask) {
      const x = rows[i];
      if (x === undefined) return -1;
      if (x === r) return i;
    }
  }

  #insert(r: R, h: number): void {
    const rows = this.#rows;
    const mask = this.#mask;
    let i = h & mask;
    while (rows[i] !== undefined) i = (i + 1) & mask;
    rows[i] = r;
    this.#hashes[i] = h;
  }

  #grow(): void {
    const old = this.#rows;
    const oldHashes = this.#hashes;
    const n = old.length * 2;
    this.#rows = new Array(n).fill(undefined);
    this.#hashes = new Int32Array(n);
    this.#mask = n - 1;
    for (let i = 0; i < old.length; i++) {
      const r = old[i];
      if (r !== undefined) this.#insert(r, oldHashes[i]!);
    }
  }
}
