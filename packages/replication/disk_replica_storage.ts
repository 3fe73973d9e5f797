/**
 * The production {@link ReplicaStorage}: a replica's data directory, locked
 * to this process, holding storage's segmented log (fsync on every append),
 * the snapshot store, and the hard-state and member-address files (each
 * replaced atomically).
 */
import { defineMessage } from "@strata/codec";
import {
  type Entry,
  entrySchema,
  type HardState,
  type Snapshot,
} from "@strata/raft";
import {
  DirLock,
  SegmentedLog,
  SnapshotStore,
  StorageError,
} from "@strata/storage";
import { join } from "node:path";
import { readHardState, writeHardState } from "./hard_state_file.ts";
import {
  type MemberAddresses,
  readMemberAddresses,
  writeMemberAddresses,
} from "./member_addresses_file.ts";
import type { RecoveredState, ReplicaStorage } from "./replica_ports.ts";

/** A log entry as the segmented log stores it (the same codec the wire uses). */
export const LogEntry = defineMessage("raft.logEntry", entrySchema);

/**
 * The log may start before the newest readable snapshot (not yet
 * compacted) but never after it: entries between would be gone. That
 * happens when the newest snapshot is damaged (skipped for the older one)
 * and the log was already compacted past the older one; the replica then
 * refuses its data like a damaged log record (exit 65).
 * @returns the `corrupt` error to refuse with, or undefined when the log
 *   covers everything after the snapshot.
 */
export function snapshotGap(
  log: { firstIndex: number; lastIndex: number },
  snapIndex: number,
  skipped: readonly string[],
): StorageError | undefined {
  if (log.lastIndex === 0 || log.firstIndex <= snapIndex + 1) return undefined;
  return new StorageError(
    "corrupt",
    `log starts at ${log.firstIndex} but the snapshot covers only through ${snapIndex}${
      skipped.length > 0
        ? `; damaged snapshot skipped: ${skipped.join(", ")}`
        : ""
    }`,
  );
}

/** Options of {@link DiskReplicaStorage.open}. */
export interface DiskStorageOptions {
  /** The data directory (created if missing). */
  dataDir: string;
  /** Log segment size in bytes. */
  segmentBytes: number;
}

/** A replica's files. Open with {@link DiskReplicaStorage.open}. */
export class DiskReplicaStorage implements ReplicaStorage {
  readonly #dir: string;
  readonly #lock: DirLock;
  readonly #log: SegmentedLog;
  readonly #snaps: SnapshotStore;

  private constructor(
    dir: string,
    lock: DirLock,
    log: SegmentedLog,
    snaps: SnapshotStore,
  ) {
    this.#dir = dir;
    this.#lock = lock;
    this.#log = log;
    this.#snaps = snaps;
  }

  /**
   * Creates and locks the directory, opens the log and the snapshot store.
   * @throws StorageError `locked` when another process owns the directory.
   */
  static async open(o: DiskStorageOptions): Promise<DiskReplicaStorage> {
    await Deno.mkdir(o.dataDir, { recursive: true });
    const lock = await DirLock.acquire(o.dataDir);
    let log: SegmentedLog | undefined;
    let snaps: SnapshotStore | undefined;
    try {
      snaps = await SnapshotStore.open(join(o.dataDir, "snapshots"), {
        keep: 2,
      });
      log = await SegmentedLog.open(join(o.dataDir, "log"), {
        sync: "always",
        segmentBytes: o.segmentBytes,
      });
      return new DiskReplicaStorage(o.dataDir, lock, log, snaps);
    } catch (e) {
      await log?.close().catch(() => {});
      snaps?.close();
      lock.release();
      throw e;
    }
  }

  async recover(): Promise<RecoveredState> {
    const { snapshot, skipped } = await this.#snaps.loadNewest();
    let snap: Snapshot | undefined;
    if (snapshot) {
      const m = snapshot.meta;
      snap = {
        meta: {
          index: m.lastIncludedIndex,
          term: m.lastIncludedTerm,
          confState: {
            voters: m.configuration.voters.map(Number),
            learners: m.configuration.learners.map(Number),
          },
        },
        data: await snapshot.readState(),
      };
    }
    const snapIndex = snap?.meta.index ?? 0;
    const log = this.#log;
    const gap = snapshotGap(
      log,
      snapIndex,
      skipped.map((s) => `${s.file} (${s.reason})`),
    );
    if (gap) throw gap;
    const from = Math.max(log.firstIndex, snapIndex + 1);
    const entries = log.lastIndex >= from
      ? (await log.read(from, log.lastIndex + 1)).map((r) =>
        LogEntry.decode(r) as Entry
      )
      : [];
    return {
      ...(snap ? { snapshot: snap } : {}),
      entries,
      hardState: await readHardState(this.#dir),
      members: await readMemberAddresses(this.#dir),
    };
  }

  get lastIndex(): number {
    return this.#log.lastIndex;
  }

  get byteSize(): number {
    return this.#log.byteSize;
  }

  async append(entries: Entry[]): Promise<void> {
    await this.#log.append(entries.map((e) =>
      LogEntry.encode({
        term: e.term,
        index: e.index,
        type: e.type,
        data: e.data,
      })
    ));
  }

  async truncateSuffix(from: number): Promise<void> {
    await this.#log.truncateSuffix(from);
  }

  writeHardState(hs: HardState): Promise<void> {
    return writeHardState(this.#dir, hs);
  }

  writeMembers(members: MemberAddresses): Promise<void> {
    return writeMemberAddresses(this.#dir, members);
  }

  async installSnapshot(s: Snapshot): Promise<void> {
    await this.#save(s);
    await this.#log.reset(s.meta.index + 1);
  }

  async saveSnapshot(s: Snapshot): Promise<void> {
    await this.#log.beginSnapshot();
    await this.#save(s);
  }

  async compactPrefix(index: number): Promise<void> {
    await this.#log.compactPrefix(Math.min(index, this.#log.lastIndex));
  }

  async close(): Promise<void> {
    await this.#log.close().catch(() => {});
    this.#snaps.close();
    this.#lock.release();
  }

  async #save(s: Snapshot): Promise<void> {
    await this.#snaps.save({
      lastIncludedIndex: s.meta.index,
      lastIncludedTerm: s.meta.term,
      configuration: {
        voters: s.meta.confState.voters.map(String),
        learners: s.meta.confState.learners.map(String),
      },
    }, s.data);
  }
}
