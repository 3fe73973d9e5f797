import { copyInto } from "./bytes.ts";

/** A stored value; `null` is a tombstone (the key was deleted). */
export type Value = Uint8Array | null;

/** One key and its value or tombstone, as merged and stored in tables. */
export interface Entry {
  key: Uint8Array;
  value: Value;
}

/*
 * Layout. A node is 4-byte aligned in a chunk: 32-bit words
 *   [seq] [key length] [tag: 0 = tombstone, else value length + 1]
 *   [height | OLDER when the next node is an older version of the same key]
 *   [next ref × height]
 * then the key bytes and the value bytes. A ref is `chunk << 20 | word
 * index`, so 0 is the head node (chunk 0, word 0), which no node points
 * to: a next ref of 0 is the end.
 */
const SEQ = 0;
const KEY_LEN = 1;
const TAG = 2;
const HEIGHT = 3;
const NEXT = 4;
const OLDER = 0x100;
const HEIGHT_MASK = 0xff;
const MAX_HEIGHT = 12;
const WORD_BITS = 20;
const WORD_MASK = (1 << WORD_BITS) - 1;
/** Chunks are indexed by the ref's top 12 bits. */
const MAX_CHUNKS = 1 << (32 - WORD_BITS);
const FIRST_CHUNK = 16 * 1024;
/** Largest chunk whose every word a ref can name (2^20 words). */
const LAST_CHUNK = 4 << WORD_BITS;

/** Nodes below which a memtable is searched through its links only. */
const FREEZE_MIN_NODES = 4096;
/** Bytes of each key after the common prefix kept as a number (< 2^53). */
const HEAD_BYTES = 6;

/**
 * Every node of a memtable in list order (key order, a key's newest
 * version first): `heads[i]` is node `refs[i]`'s key bytes after the
 * keys' common `prefix`, 6 of them as one number ({@link keyHead}), so a
 * binary search compares numbers and reads key bytes only on a tie.
 */
interface FrozenIndex {
  refs: Uint32Array;
  heads: Float64Array;
  count: number;
  prefix: number;
}

/**
 * `key`'s bytes `at` to `at + 6` as a big-endian number, missing bytes as
 * 0: a smaller head means a smaller key among keys sharing the first `at`
 * bytes; equal heads need the bytes after them.
 */
function keyHead(key: Uint8Array, at: number): number {
  let h = 0;
  for (let j = at; j < at + HEAD_BYTES; j++) {
    h = h * 256 + (j < key.length ? key[j]! : 0);
  }
  return h;
}

/**
 * The sorted in-memory table that takes writes until it is flushed to an
 * SSTable, laid out as RocksDB's memtable is: a skiplist whose nodes
 * (links, key bytes and value bytes together) are appended to a few large
 * chunks (16 KiB growing to 4 MiB, at least four times the node that
 * starts one; a node over 1 MiB gets its own), ordered byte-wise by
 * comparing the bytes in place.
 * A put allocates no object per entry that outlives it (the garbage
 * collector sees a handful of chunks, not four objects per entry), and a
 * seek walks nodes that hold the key and value next to their links.
 *
 * Every put appends a node, numbered in write order: an overwrite or a
 * delete (a tombstone, `null`) goes in front of the key's older versions,
 * which stay (`bytes` counts them, as RocksDB's arena does). A reader
 * notes the last number when it starts and skips newer nodes, so writes
 * during an iteration neither disturb nor appear in it, without copying
 * anything; nodes never move.
 */
export class Memtable {
  #chunks: Uint8Array[] = [];
  #words: Uint32Array[] = [];
  /** The chunk nodes are appended to and the next free byte in it. */
  #chunk = 0;
  #used = 0;
  #nextChunkBytes = 2 * FIRST_CHUNK;
  #seq = 0;
  #size = 0;
  #bytes = 0;
  #height = 1;
  /** The last node at each level (its next is the end): appends in key order skip the search. */
  #tail = new Uint32Array(MAX_HEIGHT);
  /** Reused by `set`: the node before the new one at each level. */
  #prev = new Uint32Array(MAX_HEIGHT);
  #rand = 0x9e3779b9;
  /**
   * The sorted index of every node, built once enough searches ran since
   * the last write (see {@link #frozenIndex}); a write drops it.
   */
  #index: FrozenIndex | undefined;
  /** Searches made without the index since the last write. */
  #quiet = 0;
  /** Scratch of {@link #probe}. */
  #probeBytes = new Uint8Array(64);
  #probeWords = new Uint32Array(this.#probeBytes.buffer);

  constructor() {
    this.#newChunk(FIRST_CHUNK);
    // The head node: no key, every level.
    this.#used = (NEXT + MAX_HEIGHT) * 4;
    this.#words[0]![HEIGHT] = MAX_HEIGHT;
  }

  /** Bytes of the nodes written (keys, values, links; older versions stay counted). */
  get bytes(): number {
    return this.#bytes;
  }

  /** Number of keys (tombstones included). */
  get size(): number {
    return this.#size;
  }

  /** Sets `key` to `value` (`null` = tombstone); copies both. */
  set(key: Uint8Array, value: Value): void {
    this.#index = undefined;
    this.#quiet = 0;
    const prev = this.#prev;
    const tail = this.#tail;
    let top = this.#height;
    // Past the last key (fillseq, a tablet's rising keys): the tails are
    // the nodes before it at every level.
    const last = tail[0]!;
    let x = 0;
    if (last !== 0 && this.#compare(last, key) < 0) {
      prev.set(tail);
    } else {
      x = this.#seek(key, prev);
    }
    const older = x !== 0 && this.#compare(x, key) === 0;
    if (!older) this.#size++;
    // Height: each level with probability 1/4 (xorshift32).
    let r = this.#rand;
    r ^= r << 13;
    r ^= r >>> 17;
    r ^= r << 5;
    this.#rand = r >>> 0;
    let h = 1;
    while (h < MAX_HEIGHT && (r & 3) === 0) {
      h++;
      r >>>= 2;
    }
    if (h > top) {
      for (let l = top; l < h; l++) prev[l] = 0;
      this.#height = top = h;
    }
    const vlen = value === null ? 0 : value.length;
    const n = this.#alloc(((NEXT + h) << 2) + key.length + vlen);
    const c = n >>> WORD_BITS;
    const wi = n & WORD_MASK;
    const w = this.#words[c]!;
    const b = this.#chunks[c]!;
    w[wi + SEQ] = ++this.#seq;
    w[wi + KEY_LEN] = key.length;
    w[wi + TAG] = value === null ? 0 : vlen + 1;
    w[wi + HEIGHT] = older ? h | OLDER : h;
    const p = (wi + NEXT + h) << 2;
    copyInto(b, p, key);
    if (value !== null) copyInto(b, p + key.length, value);
    for (let l = 0; l < h; l++) {
      const before = prev[l]!;
      const bw = this.#words[before >>> WORD_BITS]!;
      const bi = (before & WORD_MASK) + NEXT + l;
      const after = bw[bi]!;
      w[wi + NEXT + l] = after;
      bw[bi] = n;
      if (after === 0) tail[l] = n;
    }
  }

  /** The value, `null` for a tombstone, undefined when the key is absent. */
  get(key: Uint8Array): Value | undefined {
    const x = this.#seek(key, undefined);
    if (x === 0 || this.#compare(x, key) !== 0) return undefined;
    return this.#value(x);
  }

  /**
   * Entries with key `>= start` in order, as of the call: writes during
   * the iteration neither disturb nor appear in it.
   */
  entries(start?: Uint8Array): IterableIterator<Entry> {
    const c = this.cursor(start);
    return {
      next: () => c.next(),
      [Symbol.iterator]() {
        return this;
      },
    };
  }

  /** {@link entries} as a plain iterator (no generator), for merges. */
  cursor(start?: Uint8Array): Iterator<Entry> {
    const w = this.walk(start);
    return {
      next(): IteratorResult<Entry> {
        const e = w.next();
        return e === undefined
          ? { done: true, value: undefined }
          : { done: false, value: e };
      },
    };
  }

  /**
   * {@link cursor} giving the entries themselves (undefined at the end):
   * an `EntryCursor` for a range read that needs no merge (a lone
   * memtable). Keys and values are views into the chunks.
   */
  walk(start?: Uint8Array): { next(): Entry | undefined } {
    let x = start === undefined
      ? this.#words[0]![NEXT]!
      : this.#seek(start, undefined);
    const seq = this.#seq;
    return {
      next: (): Entry | undefined => {
        x = this.#visible(x, seq);
        if (x === 0) return undefined;
        const e = this.#entry(x);
        x = this.#pastKey(x);
        return e;
      },
    };
  }

  /**
   * The entries with `start <= key < end`, gathered now into an array:
   * for short ranges, such as one row, read at once.
   */
  range(start: Uint8Array, end: Uint8Array): Entry[] {
    const out: Entry[] = [];
    let x = this.#seek(start, undefined);
    while (x !== 0 && this.#compare(x, end) < 0) {
      out.push(this.#entry(x));
      x = this.#pastKey(x);
    }
    return out;
  }

  /**
   * The first node with key `>= key` (0 at the end); with `prev`, the
   * last node before it at every level. A node found bigger at one level
   * is not compared again at the levels below (RocksDB's `last_bigger`).
   */
  #seek(key: Uint8Array, prev: Uint32Array | undefined): number {
    if (prev === undefined) {
      const index = this.#index ?? this.#frozenIndex();
      if (index !== undefined) return this.#indexSeek(index, key);
    }
    const words = this.#words;
    const probe = this.#probe(key);
    let x = 0;
    let bigger = -1;
    for (let l = this.#height - 1; l >= 0; l--) {
      while (true) {
        const next = words[x >>> WORD_BITS]![(x & WORD_MASK) + NEXT + l]!;
        if (
          next === 0 || next === bigger ||
          this.#compareWords(next, key, probe) >= 0
        ) {
          bigger = next;
          break;
        }
        x = next;
      }
      if (prev !== undefined) prev[l] = x;
    }
    return words[x >>> WORD_BITS]![(x & WORD_MASK) + NEXT]!;
  }

  /**
   * The index when it exists or is now due: after as many searches
   * without a write as an eighth of the nodes (at least
   * {@link FREEZE_MIN_NODES} nodes). Building it walks every node once, so
   * it costs about what those searches cost, and it pays back only while
   * the memtable is read and not written (the reads after a bulk load, a
   * frozen memtable being flushed): a skiplist search visits ~30 nodes
   * scattered over the chunks, a cache miss each, where a binary search
   * of the index steps through two dense arrays.
   */
  #frozenIndex(): FrozenIndex | undefined {
    const n = this.#seq;
    if (n < FREEZE_MIN_NODES || ++this.#quiet < n >>> 3) return undefined;
    const words = this.#words;
    // The first and last nodes (the level-0 tail) give the common prefix
    // before the walk, so each node's head is read as the walk reaches
    // it: one cache miss a node, not a second pass over them all.
    const first = words[0]![NEXT]!;
    const prefix = this.#commonPrefix(first, this.#tail[0]!);
    const refs = new Uint32Array(n);
    const heads = new Float64Array(n);
    let count = 0;
    for (let x = first; x !== 0;) {
      refs[count] = x;
      heads[count++] = this.#head(x, prefix);
      x = words[x >>> WORD_BITS]![(x & WORD_MASK) + NEXT]!;
    }
    this.#index = { refs, heads, count, prefix };
    return this.#index;
  }

  /** {@link #seek} through the index: the first node with key `>= key` (0 at the end). */
  #indexSeek(index: FrozenIndex, key: Uint8Array): number {
    const { refs, heads, count, prefix } = index;
    // Every key starts with the common prefix: a key that differs from it
    // (or is a proper prefix of it) is below or above all of them.
    const first = refs[0]!;
    const c = first >>> WORD_BITS;
    const b = this.#chunks[c]!;
    const p = this.#keyAt(first);
    const m = key.length < prefix ? key.length : prefix;
    for (let j = 0; j < m; j++) {
      const d = key[j]! - b[p + j]!;
      if (d < 0) return first;
      if (d > 0) return 0;
    }
    if (key.length < prefix) return first;
    const h = keyHead(key, prefix);
    let lo = 0;
    let hi = count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const hm = heads[mid]!;
      if (
        hm < h ||
        (hm === h &&
          this.#compareFrom(refs[mid]!, key, prefix + HEAD_BYTES) < 0)
      ) lo = mid + 1;
      else hi = mid;
    }
    return lo < count ? refs[lo]! : 0;
  }

  /** Byte offset of node `x`'s key in its chunk. */
  #keyAt(x: number): number {
    const w = this.#words[x >>> WORD_BITS]!;
    const wi = x & WORD_MASK;
    return (wi + NEXT + (w[wi + HEIGHT]! & HEIGHT_MASK)) << 2;
  }

  /** Length of the common prefix of nodes `x`'s and `y`'s keys. */
  #commonPrefix(x: number, y: number): number {
    const bx = this.#chunks[x >>> WORD_BITS]!;
    const by = this.#chunks[y >>> WORD_BITS]!;
    const px = this.#keyAt(x);
    const py = this.#keyAt(y);
    const lx = this.#words[x >>> WORD_BITS]![(x & WORD_MASK) + KEY_LEN]!;
    const ly = this.#words[y >>> WORD_BITS]![(y & WORD_MASK) + KEY_LEN]!;
    const n = lx < ly ? lx : ly;
    let i = 0;
    while (i < n && bx[px + i] === by[py + i]) i++;
    return i;
  }

  /** Node `x`'s key bytes `at` to `at + 6` as {@link keyHead} gives them. */
  #head(x: number, at: number): number {
    const b = this.#chunks[x >>> WORD_BITS]!;
    const p = this.#keyAt(x);
    const kl = this.#words[x >>> WORD_BITS]![(x & WORD_MASK) + KEY_LEN]!;
    let h = 0;
    for (let j = at; j < at + HEAD_BYTES; j++) {
      h = h * 256 + (j < kl ? b[p + j]! : 0);
    }
    return h;
  }

  /** {@link #compare} of keys known equal before byte `from`. */
  #compareFrom(x: number, key: Uint8Array, from: number): number {
    const b = this.#chunks[x >>> WORD_BITS]!;
    const p = this.#keyAt(x);
    const kl = this.#words[x >>> WORD_BITS]![(x & WORD_MASK) + KEY_LEN]!;
    const n = kl < key.length ? kl : key.length;
    for (let i = from; i < n; i++) {
      const d = b[p + i]! - key[i]!;
      if (d !== 0) return d;
    }
    return kl - key.length;
  }

  /**
   * `key`'s bytes as 32-bit words in this machine's order, as a node's
   * (4-byte aligned) key reads through its chunk's `Uint32Array`: equal
   * words are equal bytes, so a common prefix is compared 4 bytes a step.
   */
  #probe(key: Uint8Array): Uint32Array {
    const n = key.length;
    if (n > this.#probeBytes.length) {
      this.#probeBytes = new Uint8Array((n + 3) & ~3);
      this.#probeWords = new Uint32Array(this.#probeBytes.buffer);
    }
    copyInto(this.#probeBytes, 0, key);
    return this.#probeWords;
  }

  /** {@link #compare} with `key`'s words (see {@link #probe}) taken 4 bytes at a time while equal. */
  #compareWords(x: number, key: Uint8Array, probe: Uint32Array): number {
    const c = x >>> WORD_BITS;
    const wi = x & WORD_MASK;
    const w = this.#words[c]!;
    const kl = w[wi + KEY_LEN]!;
    const kw = wi + NEXT + (w[wi + HEIGHT]! & HEIGHT_MASK);
    const n = kl < key.length ? kl : key.length;
    const whole = n >> 2;
    let i = 0;
    while (i < whole && w[kw + i] === probe[i]) i++;
    const b = this.#chunks[c]!;
    const p = kw << 2;
    for (let j = i << 2; j < n; j++) {
      const d = b[p + j]! - key[j]!;
      if (d !== 0) return d;
    }
    return kl - key.length;
  }

  /** Node `x`'s key against `key` (negative, 0, positive), byte-wise in place. */
  #compare(x: number, key: Uint8Array): number {
    const c = x >>> WORD_BITS;
    const wi = x & WORD_MASK;
    const w = this.#words[c]!;
    const b = this.#chunks[c]!;
    const kl = w[wi + KEY_LEN]!;
    const p = (wi + NEXT + (w[wi + HEIGHT]! & HEIGHT_MASK)) << 2;
    const n = kl < key.length ? kl : key.length;
    for (let i = 0; i < n; i++) {
      const d = b[p + i]! - key[i]!;
      if (d !== 0) return d;
    }
    return kl - key.length;
  }

  /** `x` or the first node after it written by `seq` (0 at the end). */
  #visible(x: number, seq: number): number {
    const words = this.#words;
    while (x !== 0) {
      const w = words[x >>> WORD_BITS]!;
      const wi = x & WORD_MASK;
      if (w[wi + SEQ]! <= seq) return x;
      x = w[wi + NEXT]!;
    }
    return 0;
  }

  /** The node after `x`'s older versions (the next key's newest). */
  #pastKey(x: number): number {
    const words = this.#words;
    let more = true;
    while (more && x !== 0) {
      const w = words[x >>> WORD_BITS]!;
      const wi = x & WORD_MASK;
      more = (w[wi + HEIGHT]! & OLDER) !== 0;
      x = w[wi + NEXT]!;
    }
    return x;
  }

  #entry(x: number): Entry {
    const c = x >>> WORD_BITS;
    const wi = x & WORD_MASK;
    const w = this.#words[c]!;
    const p = (wi + NEXT + (w[wi + HEIGHT]! & HEIGHT_MASK)) << 2;
    const k = p + w[wi + KEY_LEN]!;
    return { key: this.#chunks[c]!.subarray(p, k), value: this.#value(x) };
  }

  #value(x: number): Value {
    const c = x >>> WORD_BITS;
    const wi = x & WORD_MASK;
    const w = this.#words[c]!;
    const tag = w[wi + TAG]!;
    if (tag === 0) return null;
    const v = ((wi + NEXT + (w[wi + HEIGHT]! & HEIGHT_MASK)) << 2) +
      w[wi + KEY_LEN]!;
    return this.#chunks[c]!.subarray(v, v + tag - 1);
  }

  /** Room for a node of `n` bytes; returns its ref. */
  #alloc(n: number): number {
    n = (n + 3) & ~3;
    this.#bytes += n;
    const room = this.#chunks[this.#chunk]!.length;
    if (this.#used + n > room) {
      if (n > LAST_CHUNK >> 2) {
        // Its own chunk; the current one keeps taking smaller nodes.
        return (this.#newChunk(n) << WORD_BITS) >>> 0;
      }
      // At least four such nodes a chunk, so chunks (and their refs) stay
      // few whatever the sizes: the sizes grow to the largest quickly.
      let size = this.#nextChunkBytes;
      while (size < n << 2) size *= 2;
      this.#chunk = this.#newChunk(size);
      this.#used = 0;
      this.#nextChunkBytes = Math.min(size * 2, LAST_CHUNK);
    }
    const at = this.#used;
    this.#used += n;
    return (this.#chunk << WORD_BITS | at >> 2) >>> 0;
  }

  #newChunk(bytes: number): number {
    const c = this.#chunks.length;
    if (c >= MAX_CHUNKS) {
      throw new RangeError(`memtable is full (${MAX_CHUNKS} chunks)`);
    }
    const b = new Uint8Array(bytes);
    this.#chunks.push(b);
    this.#words.push(new Uint32Array(b.buffer, 0, bytes >> 2));
    return c;
  }
}
