/**
 * @module
 * A GFS/Colossus-style file store as real processes: a chunk master
 * (namespace with per-path locks, chunk versions, leases, placement,
 * re-replication, rebalancing, garbage collection; durable through an
 * operation log plus checkpoints), chunkservers (chunks in Haystack needle
 * volumes with a CRC32C per 64 KiB block, a scrubber, pipelined chain
 * pushes), and a streaming client.
 *
 * @example
 * ```ts
 * import { GfsClient, startCluster } from "@strata/gfs";
 *
 * const dir = await Deno.makeTempDir();
 * const cluster = await startCluster({ dataDir: dir, master: { chunkBytes: 1 << 20 } });
 * try {
 *   const gfs = new GfsClient(cluster.master.url);
 *   await gfs.upload("/hello.txt", new TextEncoder().encode("hello, chunks"));
 *   console.log(new TextDecoder().decode(await gfs.readAll("/hello.txt")));
 *   await gfs.append("/logs/app", new TextEncoder().encode("one record"));
 * } finally {
 *   await cluster.stop();
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export { GfsError, type GfsErrorCode, isGfsError } from "./shared/gfs_error.ts";
export {
  ancestors,
  parsePath,
  parsePrefix,
  parseTrashPath,
  TRASH_DIR,
  trashPath,
} from "./shared/gfs_path.ts";
export { type LockRequest, PathLocks } from "./master/path_locks.ts";
export { type FileRecord, Namespace } from "./master/namespace.ts";
export {
  type ApplyResult,
  type ChunkRecord,
  decodeOp,
  encodeOp,
  type MasterOp,
  MasterOpSchema,
  MasterState,
} from "./master/master_state.ts";
export {
  MIGRATED_OP_LOG_DIR,
  migrateOpLog,
  type OpLogMigration,
} from "./master/op_log_migration.ts";
export type { StoreReplication } from "./master/metadata_store.ts";
export {
  MasterMachine,
  type MasterOutcome,
  type ReplicatedMasterOptions,
  ReplicatedMasterStore,
} from "./master/replicated_master_store.ts";
export {
  choosePlacement,
  DEFAULT_PLACEMENT,
  fractionUsed,
  type PlacementOptions,
  type ServerLoad,
  writeQuorum,
} from "./master/placement.ts";
export { type Lease, LeaseTable } from "./master/leases.ts";
export {
  type ChunkReplicas,
  type CloneTask,
  planReplication,
  type ReplicationOptions,
  type ReplicationPlan,
} from "./master/replication_planner.ts";
export {
  type MoveTask,
  planRebalance,
  type RebalanceOptions,
} from "./master/rebalancer.ts";
export {
  type ChunkLocation,
  ChunkMaster,
  type ChunkMasterOptions,
  DEFAULT_MASTER_OPTIONS,
  type HeartbeatReply,
  type HeartbeatReport,
  type Location,
  type ServerInfo,
  type TickPlan,
} from "./master/chunk_master.ts";
export {
  BLOCK_BYTES,
  type ChunkInfo,
  type ChunkMeta,
  ChunkStore,
  type ChunkStoreOptions,
} from "./chunkserver/chunk_store.ts";
export {
  frameRecord,
  RECORD_HEADER_BYTES,
  RECORD_MAGIC,
  scanRecords,
} from "./client/record_format.ts";
export { type ByteRange, parseRange } from "./client/range_header.ts";
export {
  type ByteSource,
  chunked,
  type Download,
  GfsClient,
  READ_PIECE_BYTES,
  type UploadOptions,
  type UploadResult,
} from "./client/client.ts";
export {
  type ChunkserverConfig,
  ChunkserverConfigSchema,
  type RunningChunkserver,
  startChunkserver,
} from "./chunkserver/chunkserver.ts";
export {
  type MasterConfig,
  MasterConfigSchema,
  type MetadataStore,
  type RunningMaster,
  startMaster,
} from "./master/master_server.ts";
export {
  type ChildService,
  type Cluster,
  type ClusterOptions,
  spawnService,
  startCluster,
} from "./process_cluster.ts";
export type { SyncPolicy } from "@strata/storage";
export type {
  CommandStateMachine,
  PeerAddress,
  ReplicaStatus,
  ReplicatedNode,
} from "@strata/replication";
