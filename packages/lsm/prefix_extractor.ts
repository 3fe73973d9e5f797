/**
 * What a store's prefix Bloom filters hold (RocksDB's `prefix_extractor`):
 * each SSTable then also keeps a Bloom filter of its keys' prefixes, and a
 * cursor bounded to one prefix skips the tables whose filter says no. The
 * tables app extracts a cell key's row, so a row read, which covers
 * several cell keys and so cannot use the whole-key filter, skips the
 * tables that lack the row.
 */
export interface PrefixExtractor {
  /**
   * Recorded in every table built with it. A table whose prefix filter
   * was built under another name (or that has none) is read without one:
   * change the name when `prefixOf` changes.
   */
  readonly name: string;
  /**
   * The prefix of `key`: its first bytes (a view is fine), or undefined
   * when the key has none (such keys are in no prefix filter). Contract:
   * every key that starts with a prefix this returns has that same prefix
   * (so a table's keys with one prefix are contiguous, and a cursor over
   * a range inside one prefix may trust the filter).
   */
  prefixOf(key: Uint8Array): Uint8Array | undefined;
}
