/**
 * `cache_storage.ts`: opens the tablets of `memory` and `write-behind`
 * tables as {@link MemoryTablet}s, and every other tablet with the cell's
 * usual opener.
 *
 * Where the rows go between owners, per tablet storage name `dir` in the
 * {@link SnapshotStore}:
 * - `owner`: a marker `{server, session}` written when a server opens the
 *   tablet and removed by an orderly close after the snapshot is written.
 *   A server opening the tablet while the marker names another server whose
 *   kv session is still live refuses (the master asks again on its next
 *   pass): the previous owner has not handed over yet. A marker naming a
 *   dead session means that owner crashed (or lost its lease: it dropped
 *   its tablets).
 * - `snap-<epoch>-<seq>`: snapshots (`snapshot_codec.ts`). An orderly close
 *   (a move, the halves of a split) writes one; `write-behind` tablets also
 *   write one every `snapshotMs` when they changed. Opening loads the
 *   newest; its epoch is the newest's + 1, so a late write of a previous
 *   owner never sorts above the new owner's snapshots.
 *
 * Guarantees: `memory` — an orderly move or split keeps every row; a crash
 * (or a lost lease) of the owner loses the tablet's rows: the new owner
 * starts empty (the handover snapshot is removed once loaded, so an old
 * one never comes back). `write-behind` — a crash loses at most the writes
 * of the last `snapshotMs` (plus the time to write one snapshot).
 */
import type { TableSchema } from "../tablet/types.ts";
import type { StorageMode } from "../shared/wire.ts";
import type { TabletOpener } from "../server/tablet_port.ts";
import { MemoryTablet } from "./memory_tablet.ts";
import { decodeSnapshot, encodeSnapshot } from "./snapshot_codec.ts";
import type { SnapshotStore } from "./snapshot_store.ts";

/** Who has a tablet open. */
export interface TabletOwner {
  server: string;
  session: number;
}

/** Options of {@link cacheTabletOpener}. */
export interface CacheStorageOptions {
  /** Snapshots and markers. */
  store: SnapshotStore;
  /** This server and its current kv session (undefined: not registered). */
  self(): TabletOwner | undefined;
  /** Whether `owner`'s kv session is still live. */
  isLive(owner: TabletOwner): Promise<boolean>;
  /** Logs a line. */
  log(line: string): void;
}

/** The storage mode of a schema (`disk` when not given). */
export function storageMode(schema: TableSchema): StorageMode {
  return (schema as { storage?: StorageMode }).storage ?? "disk";
}

const SNAP = /^snap-(\d{10})-(\d{10})$/;
const pad = (n: number) => String(n).padStart(10, "0");
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Why an open was refused: the previous owner has not handed over yet. */
export class HandoverPendingError extends Error {
  /** @param message who still holds the tablet. */
  constructor(message: string) {
    super(message);
    this.name = "HandoverPendingError";
  }
}

/** Wraps `disk` (the cell's opener) so memory tables open in memory. */
export function cacheTabletOpener(
  disk: TabletOpener,
  o: CacheStorageOptions,
): TabletOpener {
  return async (dir, schema, range, options) => {
    const mode = storageMode(schema);
    if (mode === "disk") return disk(dir, schema, range, options);
    const me = o.self();
    if (!me) throw new Error("not registered: cannot open a memory tablet");
    const markerBytes = await o.store.read(dir, "owner");
    if (markerBytes) {
      let marker: TabletOwner | undefined;
      try {
        marker = JSON.parse(dec.decode(markerBytes)) as TabletOwner;
      } catch { /* unreadable: treat as gone */ }
      if (
        marker &&
        !(marker.server === me.server && marker.session === me.session) &&
        await o.isLive(marker)
      ) {
        throw new HandoverPendingError(
          `tablet ${dir} is still open on ${marker.server}: waiting for its handover snapshot`,
        );
      }
    }
    const names = (await o.store.list(dir)).filter((n) => SNAP.test(n)).sort();
    const newest = names.at(-1);
    const epoch = newest ? Number(SNAP.exec(newest)![1]) + 1 : 1;
    let seq = 0;
    const intervalMs = (schema as { snapshotMs?: number }).snapshotMs ?? 1000;
    let timer: ReturnType<typeof setInterval> | undefined;
    let writing: Promise<void> | undefined;
    let written = -1;
    const snapshot = async (t: MemoryTablet, force = false) => {
      if (!force && t.version === written) return;
      const version = t.version;
      const name = `snap-${pad(epoch)}-${pad(++seq)}`;
      await o.store.write(dir, name, encodeSnapshot(t.rows(), t.lastTimestamp));
      written = version;
      for (const old of (await o.store.list(dir)).filter((n) => SNAP.test(n))) {
        if (old < name) await o.store.remove(dir, old);
      }
    };
    const tablet = new MemoryTablet(schema, range, {
      onClose: async (t) => {
        clearInterval(timer);
        await writing;
        await snapshot(t, true); // the handover: always, changed or not
        await o.store.remove(dir, "owner");
      },
      onDiscard: () => clearInterval(timer),
    });
    if (newest) {
      const data = await o.store.read(dir, newest);
      if (data) {
        const s = decodeSnapshot(data);
        const n = tablet.load(s.rows, s.clock);
        o.log(`tablet ${dir}: loaded ${n} rows from ${newest}`);
      }
    }
    await o.store.write(dir, "owner", enc.encode(JSON.stringify(me)));
    if (mode === "memory") {
      // Consumed: after a crash of this owner the tablet comes back empty.
      for (const n of names) await o.store.remove(dir, n);
    } else {
      written = tablet.version;
      timer = setInterval(() => {
        if (writing || tablet.closed) return;
        writing = snapshot(tablet).catch((e) =>
          o.log(
            `tablet ${dir}: write-behind snapshot failed: ${
              e instanceof Error ? e.message : e
            }`,
          )
        ).finally(() => writing = undefined);
      }, intervalMs);
    }
    return tablet;
  };
}
