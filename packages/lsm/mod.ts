/**
 * @module
 * strata's log-structured merge tree: the sorted key/value engine of one
 * tablet. A commit log with group commit (`@strata/storage`'s
 * SegmentedLog), a sorted memtable, immutable SSTables (checksummed data
 * blocks, a block index, a Bloom filter, in a codec file envelope), reads
 * and range scans that merge them newest first, tombstones, merging
 * compaction and a block cache with a byte budget. Table files go through
 * a small {@link FileStore} port and the log through a {@link CommitLog}
 * port (local disk by default; the tables app puts both on GFS).
 *
 * @example
 * ```ts
 * import { LsmStore } from "@strata/lsm";
 *
 * const dir = await Deno.makeTempDir();
 * const enc = new TextEncoder();
 * const db = await LsmStore.open(dir, { memtableBytes: 1 << 20 });
 * await db.put(enc.encode("row1"), enc.encode("a"));
 * await db.put(enc.encode("row2"), enc.encode("b"));
 * await db.delete(enc.encode("row1"));
 * await db.flush(); // memtable → SSTable
 * console.log(await db.get(enc.encode("row2"))); // Uint8Array [98]
 * for await (const { key } of db.scan({ prefix: enc.encode("row"), limit: 10 })) {
 *   console.log(new TextDecoder().decode(key)); // row2
 * }
 * await db.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export { isLsmError, LsmError, type LsmErrorCode } from "./lsm_error.ts";
export {
  type CompactionFilter,
  type LsmStats,
  LsmStore,
  type LsmStoreOptions,
  MAX_KEY_BYTES,
  MAX_VALUE_BYTES,
  type ScanOptions,
  type SharedTable,
} from "./lsm_store.ts";
export {
  loadManifest,
  type Manifest,
  MANIFEST_NAME,
  namedStores,
  parseManifest,
} from "./manifest.ts";
export type { AppendableFile, FileStore, ReadableFile } from "./file_store.ts";
export { LocalFileStore } from "./local_file_store.ts";
export { LsmCursor, type StoredEntry } from "./lsm_cursor.ts";
export type { CommitLog } from "./commit_log.ts";
export { LocalCommitLog } from "./local_commit_log.ts";
export { type Entry, Memtable, type Value } from "./memtable.ts";
export { type KeyClip, SSTable } from "./sstable.ts";
export {
  SSTableBuilder,
  type SSTableBuilderOptions,
} from "./sstable_builder.ts";
export { Arena } from "./arena.ts";
export type { PrefixExtractor } from "./prefix_extractor.ts";
export { BlockCache } from "./block_cache.ts";
export {
  bloomMayContain,
  buildBloom,
  buildBloomFromHashes,
  hashKey,
} from "./bloom.ts";
export { entryCursor, MergeCursor, mergeSorted } from "./merge.ts";
export type { EntryCursor, EntrySource } from "./merge.ts";
export {
  compareBytes,
  copyInto,
  hasPrefix,
  keyString,
  prefixEnd,
} from "./bytes.ts";
