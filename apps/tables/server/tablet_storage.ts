/**
 * Where tablets live: a storage root every tablet server of the cell can
 * reach, so that any server can open any tablet (after a move, or when
 * its server died). Here the root is a directory on the machine's file
 * system — enough for a cell whose processes share one machine (the
 * `deno task tables` stack and the tests); each tablet is an LSM store
 * (commit log and SSTables) in `<root>/<table>/<tablet id>`, locked by the
 * process that has it open.
 */
import { join } from "node:path";
import { openTablet } from "../tablet/mod.ts";
import type { TabletOpener } from "./tablet_port.ts";

/** Options of the tablets' LSM stores. */
export interface TabletStorageOptions {
  /** Flush a memtable past this many bytes. */
  memtableBytes?: number;
}

/** Opens tablets under the directory `root`. */
export function openTabletStorage(
  root: string,
  options: TabletStorageOptions = {},
): TabletOpener {
  return (dir, schema, range, open = {}) =>
    openTablet(join(root, dir), schema, range, {
      lsm: {
        ...(options.memtableBytes !== undefined
          ? { memtableBytes: options.memtableBytes }
          : {}),
        ...(open.bulkLoad ? { sync: "never" as const } : {}),
      },
      ...(open.clock ? { clock: open.clock } : {}),
    });
}
