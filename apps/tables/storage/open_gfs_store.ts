import type { GfsClient } from "@strata/gfs";
import { LsmStore, type LsmStoreOptions } from "@strata/lsm";
import { GfsCommitLog, type GfsCommitLogOptions } from "./gfs_commit_log.ts";
import { GfsFence } from "./gfs_fence.ts";
import { GfsFileStore, TABLE_IDS_PER_EPOCH } from "./gfs_file_store.ts";

/** Options of {@link openGfsStore}. */
export interface GfsStoreOptions
  extends Omit<LsmStoreOptions, "files" | "log" | "firstTableId" | "sync"> {
  /** Who claims the store (recorded in its claim file). */
  owner?: string;
  /** Commit log options. */
  log?: GfsCommitLogOptions;
}

/** An LsmStore in GFS and the fence of its owner. */
export interface GfsStore {
  store: LsmStore;
  fence: GfsFence;
  log: GfsCommitLog;
}

/**
 * Opens (or creates) the LsmStore kept in GFS under `dir` (an absolute GFS
 * path; one store per tablet), taking it over from any previous owner:
 * claims the next epoch ({@link GfsFence}), adopts the newest manifest,
 * replays every log file the tables do not cover, and starts a new log
 * file. A previous owner still running is fenced: it can no longer
 * acknowledge a write, and what it writes late is never read. The caller
 * passes its `GfsClient` (with whatever token or masters it needs).
 */
export async function openGfsStore(
  gfs: GfsClient,
  dir: string,
  options: GfsStoreOptions = {},
): Promise<GfsStore> {
  const { owner, log: logOptions, ...lsm } = options;
  const fence = await GfsFence.claim(gfs, dir, owner);
  const files = await GfsFileStore.open(gfs, dir, fence);
  const log = GfsCommitLog.open(gfs, dir, fence, logOptions);
  const store = await LsmStore.open("", {
    ...lsm,
    files,
    log,
    firstTableId: fence.epoch * TABLE_IDS_PER_EPOCH,
  });
  return { store, fence, log };
}
