import type { GfsClient } from "@strata/gfs";
import { LsmStore, type LsmStoreOptions } from "@strata/lsm";
import { GfsFence } from "./gfs_fence.ts";
import { GfsFileStore, TABLE_IDS_PER_EPOCH } from "./gfs_file_store.ts";
import { raiseFloor, readOldEntries } from "./log_sources.ts";
import { ServerLog, type ServerLogOptions } from "./server_log.ts";

/** Options of {@link openGfsStore}. */
export interface GfsStoreOptions
  extends Omit<LsmStoreOptions, "files" | "log" | "firstTableId" | "sync"> {
  /** Who claims the store (recorded in its claim file). */
  owner?: string;
  /** Commit log options. */
  log?: ServerLogOptions;
}

/** An LsmStore in GFS, the fence of its owner and its commit log. */
export interface GfsStore {
  store: LsmStore;
  fence: GfsFence;
  log: ServerLog;
}

/** Directory of the logs of {@link openGfsStore}'s owners, in the store's. */
export const OWN_LOG_DIR = "slog";

/**
 * Opens (or creates) the LsmStore kept in GFS under `dir` (an absolute GFS
 * path) on its own, outside a tablet server (tests, probes), taking it
 * over from any previous owner: claims the next epoch ({@link GfsFence}),
 * adopts the newest manifest, replays the records of previous owners the
 * tables do not cover, and writes to a new commit log. The log is a
 * {@link ServerLog} with this one store (`<dir>/slog/<id>`, named by the
 * claim), so a store opened here recovers exactly as a tablet server's
 * tablet does (`../server/tablet_storage.ts`). A previous owner still
 * running is fenced: it can no longer acknowledge a write, and what it
 * writes late is never read. The caller passes its `GfsClient` (with
 * whatever token or masters it needs).
 */
export async function openGfsStore(
  gfs: GfsClient,
  dir: string,
  options: GfsStoreOptions = {},
): Promise<GfsStore> {
  const { owner, log: logOptions, ...lsm } = options;
  const logDir = `${dir}/${OWN_LOG_DIR}/${crypto.randomUUID().slice(0, 8)}`;
  const fence = await GfsFence.claim(gfs, dir, owner, undefined, logDir);
  const files = await GfsFileStore.open(gfs, dir, fence);
  const log = ServerLog.open(gfs, logDir, logOptions);
  const view = log.view(
    dir,
    fence,
    () => readOldEntries(gfs, dir, dir, fence.epoch),
  );
  const store = await LsmStore.open("", {
    ...lsm,
    files,
    log: view,
    firstTableId: fence.epoch * TABLE_IDS_PER_EPOCH,
  });
  // What was replayed goes into the tables; from then on no reader needs
  // the previous owners' logs (the floor), nor this owner's start mark.
  if (view.replayed > 0) await store.flush();
  if (fence.epoch > 1) await raiseFloor(gfs, dir, fence.epoch);
  await view.releaseStart();
  return { store, fence, log };
}
