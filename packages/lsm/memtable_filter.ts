import { hashKey } from "./bloom.ts";
import type { PrefixExtractor } from "./prefix_extractor.ts";

/** Probes per prefix (the filter is sparse: see {@link MemtableFilter}). */
const PROBES = 4;
/** Smallest and largest filter, in bits. */
const MIN_BITS = 2 ** 13;
const MAX_BITS = 2 ** 26;

/**
 * A Bloom filter of the prefixes in one memtable (RocksDB's
 * `memtable_prefix_bloom_size_ratio`): a read bounded to one prefix (a
 * tablet's row read) skips the memtable's skiplist search when the filter
 * says no, which for a row that is only in the SSTables (most rows, in a
 * store much larger than its memtable) is the costliest part of the read.
 * Sized from the memtable's byte budget, one bit per 4 bytes (64 MiB of
 * memtable: 2 MiB), so even entries of a few dozen bytes leave it sparse
 * enough for {@link PROBES} probes. The probes of one prefix fall in one
 * 64-byte block (a blocked Bloom filter), so a put, which adds its key's
 * prefix, costs one cache miss instead of one per probe. It is allocated
 * whole when its memtable starts and dropped with it; a false positive
 * only costs the search it would have saved.
 */
export class MemtableFilter {
  /** The bits, in 64-byte blocks (16 words): one cache line per prefix. */
  #words: Uint32Array;
  #blocks: number;
  #extractor: PrefixExtractor;

  /** @param memtableBytes the memtable's budget (sizes the filter). */
  constructor(extractor: PrefixExtractor, memtableBytes: number) {
    const bits = Math.min(MAX_BITS, Math.max(MIN_BITS, memtableBytes / 4));
    this.#blocks = Math.ceil(bits / 512);
    this.#words = new Uint32Array(this.#blocks * 16);
    this.#extractor = extractor;
  }

  /** Notes `key`'s prefix (a key without one adds nothing). */
  add(key: Uint8Array): void {
    const p = this.#extractor.prefixOf(key);
    if (p === undefined) return;
    const h = hashKey(p);
    const w = this.#words;
    const base = (h % this.#blocks) * 16;
    // The probes' bit numbers within the block come from the hash's
    // rotation, so they are independent of the block chosen.
    let g = ((h >>> 17) | (h << 15)) >>> 0;
    const delta = ((g >>> 21) | 1) >>> 0;
    for (let j = 0; j < PROBES; j++) {
      const bit = g & 511;
      w[base + (bit >>> 5)]! |= 1 << (bit & 31);
      g = (g + delta) >>> 0;
    }
  }

  /**
   * False when no key with the prefix whose {@link hashKey} is `hash`
   * was added (the hash of an extracted prefix, as tables are probed).
   */
  mayContain(hash: number): boolean {
    const w = this.#words;
    const base = (hash % this.#blocks) * 16;
    let g = ((hash >>> 17) | (hash << 15)) >>> 0;
    const delta = ((g >>> 21) | 1) >>> 0;
    for (let j = 0; j < PROBES; j++) {
      const bit = g & 511;
      if ((w[base + (bit >>> 5)]! & (1 << (bit & 31))) === 0) return false;
      g = (g + delta) >>> 0;
    }
    return true;
  }
}
