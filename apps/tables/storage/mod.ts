/**
 * @module
 * Tablet storage in GFS: an LsmStore whose SSTables, manifest and commit
 * log are GFS files (through the public `GfsClient` only), so another
 * tablet server can take a tablet over when its server dies, with fencing
 * of the old owner.
 */
export {
  type GfsStore,
  type GfsStoreOptions,
  openGfsStore,
  OWN_LOG_DIR,
} from "./open_gfs_store.ts";
export { GfsFileStore, TABLE_IDS_PER_EPOCH } from "./gfs_file_store.ts";
export { FencedError, GfsFence, isFencedError } from "./gfs_fence.ts";
export {
  ServerLog,
  type ServerLogOptions,
  TabletLogView,
} from "./server_log.ts";
export {
  decodeSections,
  encodeSections,
  type LogSection,
  splitByTablet,
} from "./server_log_format.ts";
export {
  claimedLog,
  FLOOR_DIR,
  raiseFloor,
  readOldEntries,
} from "./log_sources.ts";
export {
  splitDeadServerLogs,
  type SplitResult,
  splitServerLog,
} from "./log_split.ts";
export { type LogSweepResult, sweepDeadLogs } from "./log_sweep.ts";
export { decodeBlock, encodeBlock, type LogEntry } from "./log_format.ts";
export { type ResolvedLog, resolveLog } from "./log_replay.ts";
export {
  gfsStoreFolder,
  siblingPaths,
  type StoreFolder,
  sweepRetired,
} from "./store_sweep.ts";
