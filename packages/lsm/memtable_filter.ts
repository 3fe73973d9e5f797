import {
  bloomAddHash,
  bloomMayContainHash,
  emptyBloom,
  hashKey,
} from "./bloom.ts";
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
 * enough for {@link PROBES} probes. It is allocated whole when its
 * memtable starts and dropped with it; a false positive only costs the
 * search it would have saved.
 */
export class MemtableFilter {
  #bits: Uint8Array;
  #extractor: PrefixExtractor;

  /** @param memtableBytes the memtable's budget (sizes the filter). */
  constructor(extractor: PrefixExtractor, memtableBytes: number) {
    const bits = Math.min(MAX_BITS, Math.max(MIN_BITS, memtableBytes / 4));
    this.#bits = emptyBloom(Math.ceil(bits / 8), PROBES);
    this.#extractor = extractor;
  }

  /** Notes `key`'s prefix (a key without one adds nothing). */
  add(key: Uint8Array): void {
    const p = this.#extractor.prefixOf(key);
    if (p !== undefined) bloomAddHash(this.#bits, hashKey(p));
  }

  /**
   * False when no key with the prefix whose {@link hashKey} is `hash`
   * was added (the hash of an extracted prefix, as tables are probed).
   */
  mayContain(hash: number): boolean {
    return bloomMayContainHash(this.#bits, hash);
  }
}
