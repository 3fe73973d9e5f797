/** Bytes of each key after the common prefix kept as a number (< 2^53). */
const HEAD_BYTES = 6;

/**
 * The search side of an SSTable's block index: the last key of every
 * data block (sorted), found by binary search. The keys of one table share
 * a long prefix (a tablet's cell keys: the row's leading bytes), so a
 * plain byte-wise search compares that prefix again at every step, each
 * step in another array (a cache miss). Here the common prefix is checked
 * once per search and each key's next 6 bytes are kept as one number in a
 * `Float64Array`: a step compares two numbers, and key bytes are read only
 * when the numbers tie.
 */
export class BlockIndex {
  /** The keys, in order. */
  readonly keys: readonly Uint8Array[];
  #prefixLen: number;
  #heads: Float64Array;

  /** @param keys sorted byte-wise (ties allowed). */
  constructor(keys: readonly Uint8Array[]) {
    this.keys = keys;
    const n = keys.length;
    this.#prefixLen = n === 0 ? 0 : commonPrefix(keys[0]!, keys[n - 1]!);
    this.#heads = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      this.#heads[i] = head(keys[i]!, this.#prefixLen);
    }
  }

  /** Index of the first key `>= key` (the key count when none). */
  lowerBound(key: Uint8Array): number {
    const keys = this.keys;
    const n = keys.length;
    if (n === 0) return 0;
    // Every key starts with the common prefix: a key that differs from it
    // (or is a proper prefix of it) is below or above all of them.
    const L = this.#prefixLen;
    const first = keys[0]!;
    const m = key.length < L ? key.length : L;
    for (let j = 0; j < m; j++) {
      const d = key[j]! - first[j]!;
      if (d < 0) return 0;
      if (d > 0) return n;
    }
    if (key.length < L) return 0;
    const h = head(key, L);
    const heads = this.#heads;
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const hm = heads[mid]!;
      if (
        hm < h || (hm === h && compareFrom(keys[mid]!, key, L + HEAD_BYTES) < 0)
      ) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** Length of the common prefix of `a` and `b`. */
function commonPrefix(a: Uint8Array, b: Uint8Array): number {
  const n = a.length < b.length ? a.length : b.length;
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/**
 * `key`'s bytes `at` to `at + 6` as a big-endian number, missing bytes as
 * 0: a smaller head means a smaller key (among keys sharing the first
 * `at` bytes); equal heads need {@link compareFrom}.
 */
function head(key: Uint8Array, at: number): number {
  let h = 0;
  for (let j = 0; j < HEAD_BYTES; j++) {
    const i = at + j;
    h = h * 256 + (i < key.length ? key[i]! : 0);
  }
  return h;
}

/**
 * Byte-wise order of `a` and `b`, known equal (as far as both go) before
 * `from`.
 */
function compareFrom(a: Uint8Array, b: Uint8Array, from: number): number {
  const n = a.length < b.length ? a.length : b.length;
  for (let i = from; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}
