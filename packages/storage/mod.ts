/**
 * @module
 * strata's storage: where an acknowledged write survives `kill -9`. A
 * segmented write-ahead log with group commit (the Raft log), atomic files,
 * a snapshot store, Haystack needle volumes, and the directory lock that
 * keeps one process per data directory. Everything on disk is checksummed
 * with CRC32C; torn tails are found and cut on open.
 *
 * @example
 * ```ts
 * import { SegmentedLog, SnapshotStore, compactToSnapshot } from "@strata/storage";
 *
 * const dir = await Deno.makeTempDir();
 * // sync: "always" (group commit); 1 MiB preallocated segments.
 * const log = await SegmentedLog.open(`${dir}/log`, { segmentBytes: 1 << 20 });
 * const { first, last } = await log.append([new TextEncoder().encode("x=1")]);
 * console.log(first, last, await log.read(first, last + 1));
 *
 * // Snapshot: roll to a fresh segment, save, then drop covered segments.
 * const store = await SnapshotStore.open(`${dir}/snapshots`);
 * const upTo = (await log.beginSnapshot()) - 1;
 * await store.save({
 *   lastIncludedIndex: upTo,
 *   lastIncludedTerm: 1,
 *   configuration: { voters: ["n1"], learners: [] },
 * }, new TextEncoder().encode("state"));
 * await compactToSnapshot(log, store);
 * await log.close();
 * store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export {
  asStorageError,
  isStorageError,
  StorageError,
  type StorageErrorCode,
} from "./storage_error.ts";
export { type SyncPolicy, SyncPolicySchema } from "./sync_policy.ts";
export { GroupCommit } from "./group_commit.ts";
export { DirLock, LOCK_FILE } from "./dir_lock.ts";
export {
  isAtomicTempName,
  pathExists,
  syncDir,
  writeAll,
  writeFileAtomic,
} from "./atomic_file.ts";
export { PositionedReader, readAtSync } from "./positioned_read.ts";
export { crc32cCombine } from "./crc32c_combine.ts";
export {
  intactRecordAfter,
  RECORD_HEADER_BYTES,
  RECORD_OVERHEAD_BYTES,
  type RecordScan,
  scanRecords,
  type ScanStop,
  writeRecord,
} from "./log_record.ts";
export {
  type AppendResult,
  type CompactResult,
  type LogRecoveryReport,
  SegmentedLog,
  type SegmentedLogOptions,
  segmentName,
} from "./segmented_log.ts";
export { canMapFiles } from "./mapped_file.ts";
export {
  type LoadedSnapshot,
  type LoadResult,
  type SkippedSnapshot,
  SNAPSHOT_KIND,
  SNAPSHOT_VERSION,
  type SnapshotMeta,
  SnapshotMetaSchema,
  snapshotName,
  SnapshotStore,
  type SnapshotStoreOptions,
} from "./snapshot_store.ts";
export { compactToSnapshot } from "./snapshot_compaction.ts";
export {
  encodeNeedle,
  FLAG_DELETED,
  NEEDLE_OVERHEAD_BYTES,
  needleBytes,
  type NeedleHeader,
  type ParsedNeedle,
  parseNeedle,
} from "./needle.ts";
export {
  type NeedleIndexCheckpoint,
  type NeedleLocation,
} from "./needle_index_checkpoint.ts";
export {
  INDEX_FILE,
  NeedleVolume,
  type NeedleVolumeOptions,
  VOLUME_FILE,
  type VolumeCompactReport,
  type VolumeRecoveryReport,
} from "./needle_volume.ts";
