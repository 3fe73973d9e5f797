/**
 * Where tablets live: storage every tablet server of the cell can reach,
 * so that any server can open any tablet (after a move, a split, or when
 * its server died). Two kinds:
 *
 * - GFS ({@link openGfsTabletStorage}): each tablet is an LSM store whose
 *   SSTables and manifest are GFS files under `<root>/<table>/<tablet id>`
 *   and whose commit log records go to its server's log in GFS, shared by
 *   the server's tablets (`../storage/`), all through the public GFS
 *   client. Opening claims the next fencing epoch of the
 *   tablet, so a previous owner that still runs can no longer acknowledge
 *   a write. This is what `deno task tables` uses.
 * - A shared directory ({@link openTabletStorage}): each tablet is an LSM
 *   store in `<root>/<table>/<tablet id>` on the local file system, locked
 *   by the process that has it open. Enough for a cell whose processes
 *   share one machine (tests that need no GFS cell).
 */
import { join } from "node:path";
import type { GfsClient } from "@strata/gfs";
import { openTablet } from "../tablet/mod.ts";
import { MANIFEST_NAME, namedStores, parseManifest } from "@strata/lsm";
import {
  GfsFence,
  GfsFileStore,
  raiseFloor,
  readOldEntries,
  type ServerLog,
  siblingPaths,
  type StoreFolder,
  TABLE_IDS_PER_EPOCH,
} from "../storage/mod.ts";
import type { TabletOpener } from "./tablet_port.ts";

/** Options of the tablets' LSM stores. */
export interface TabletStorageOptions {
  /** Flush a memtable past this many bytes. */
  memtableBytes?: number;
}

const memtable = (o: TabletStorageOptions) =>
  o.memtableBytes !== undefined ? { memtableBytes: o.memtableBytes } : {};

/** Opens tablets under the local directory `root`. */
export function openTabletStorage(
  root: string,
  options: TabletStorageOptions = {},
): TabletOpener {
  return (dir, schema, range, open = {}) =>
    openTablet(join(root, dir), schema, range, {
      lsm: {
        ...memtable(options),
        ...(open.bulkLoad ? { sync: "never" as const } : {}),
      },
      ...(open.shared ? { shared: open.shared } : {}),
    });
}

/** The {@link StoreFolder} of tablets stored under the local directory `root`. */
export function localStoreFolder(root: string): StoreFolder {
  return {
    async namedBy(store) {
      let bytes: Uint8Array;
      try {
        // Replaced by rename: one whole version or the other.
        bytes = await Deno.readFile(
          join(root, store, "tables", MANIFEST_NAME),
        );
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) return new Set();
        throw e;
      }
      return siblingPaths(store, namedStores(parseManifest(bytes)));
    },
    async remove(store) {
      await Deno.remove(join(root, store), { recursive: true }).catch((e) => {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      });
    },
  };
}

/**
 * Opens tablets in GFS under the absolute GFS path `root`, claiming each
 * tablet's next fencing epoch as `owner` (the tablet server's id). Every
 * tablet's commit log records go to the server's current log (`log()`,
 * one per server process and kv session, shared by its tablets: group
 * commit across them); the claim names that log, so the tablet's next
 * owner reads its records there (`../storage/log_sources.ts`). After
 * replaying a previous owner's records the tablet flushes them and raises
 * its log floor (in the background, while it serves), so later
 * recoveries skip the older logs. Closing a
 * tablet flushes it first (a clean move leaves nothing to replay); a
 * tablet fenced meanwhile closes all the same.
 */
export function openGfsTabletStorage(
  gfs: GfsClient,
  root: string,
  owner: string,
  log: () => ServerLog,
  options: TabletStorageOptions = {},
): TabletOpener {
  // Bulk loads go through the GFS commit log too (it has no unsynced mode).
  return async (dir, schema, range, open = {}) => {
    const path = `${root}/${dir}`;
    const serverLog = log();
    const fence = await GfsFence.claim(
      gfs,
      path,
      owner,
      undefined,
      serverLog.dir,
    );
    const files = await GfsFileStore.open(gfs, path, fence);
    const view = serverLog.view(
      dir,
      fence,
      () => readOldEntries(gfs, path, dir, fence.epoch),
    );
    // The store's directory is unused: its files and log are in GFS.
    const tablet = await openTablet("", schema, range, {
      lsm: {
        ...memtable(options),
        files,
        log: view,
        firstTableId: fence.epoch * TABLE_IDS_PER_EPOCH,
      },
      ...(open.shared ? { shared: open.shared } : {}),
    });
    // In the background, while the tablet serves: until the floor is
    // raised, a recovery reads the older logs too (and this owner's start
    // mark, which voids their late appends, stays in its log).
    (async () => {
      if (fence.epoch > 1) {
        if (view.replayed > 0) await tablet.flush();
        await raiseFloor(gfs, path, fence.epoch);
      }
      await view.releaseStart();
    })().catch(() => {
      // Closed or fenced meanwhile, or GFS trouble: the next owner reads
      // from the old floor.
    });
    view.onPressure = () => void tablet.flush().catch(() => {});
    const close = tablet.close.bind(tablet);
    tablet.close = async () => {
      await tablet.flush().catch(() => {});
      await close();
    };
    return tablet;
  };
}
