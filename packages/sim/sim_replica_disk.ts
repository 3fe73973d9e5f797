/**
 * A simulated disk for one replica (`ReplicaStorage` of packages/
 * replication). Writes land in the page cache at once (what the process
 * reads back) and become durable one by one, in order, after a seeded
 * fsync latency; the promise of a write resolves (inside the process) only
 * once it is durable. A crash keeps what was durable plus a random prefix
 * of the writes still in flight and forgets the rest; a power loss usually
 * keeps none of them.
 *
 * Disk faults:
 * - a torn write: at a crash, the first write that did not make it may
 *   reach the disk cut at a random byte, leaving a partial last log record;
 * - a failed fsync (EIO): the write is not durable, its promise rejects,
 *   and the disk then refuses every later write of that process life (as a
 *   file system remounted read-only does), until the process restarts;
 * - a full disk (ENOSPC, while {@link SimReplicaDisk.full}): every write
 *   is refused at once and reaches neither the page cache nor the disk;
 * - a damaged newest snapshot ({@link SimReplicaDisk.damageSnapshot}): the
 *   disk keeps two snapshot files with their CRC32C, as SnapshotStore does;
 *   recovery skips a file whose checksum fails for the older one, and
 *   refuses (production's `snapshotGap`) when the log does not reach back
 *   to it, after which the disk is {@link SimReplicaDisk.lost};
 * - a bit flip ({@link SimReplicaDisk.flipBit}) in a durable log record,
 *   and a torn hard-state file (a crash with a hard-state write in
 *   flight): recovery must refuse them (the record's CRC32C, the hard
 *   state's checksummed envelope), never start from damaged data nor cut
 *   intact records; {@link SimReplicaDisk.repair} then restores the damaged
 *   bytes, as an operator restoring them from a mirror would.
 *
 * Log entries are stored as the production log's bytes: the raft entry
 * codec inside storage's record framing (length, index, payload, CRC32C),
 * and recovery runs storage's own `scanRecords` over them, which must stop
 * at a torn record; the hard state is stored as the production file's bytes
 * (`encodeHardState`) and read back with `decodeHardState`; the members are
 * replaced atomically (a rename), so they are never torn.
 */
import type { Entry, HardState, Snapshot } from "@strata/raft";
import { crc32c } from "@strata/codec";
import {
  decodeHardState,
  encodeHardState,
  LogEntry,
  type RecoveredState,
  type ReplicaStorage,
  snapshotGap,
} from "@strata/replication";
import {
  intactRecordAfter,
  RECORD_HEADER_BYTES,
  RECORD_OVERHEAD_BYTES,
  scanRecords,
  StorageError,
  writeRecord,
} from "@strata/storage";
import type { Prng } from "./prng.ts";
import type { Scheduler } from "./scheduler.ts";
import type { SimProcess } from "./sim_process.ts";

type Members = RecoveredState["members"];

/** A snapshot file: the snapshot and the CRC32C its file was written with. */
interface SnapshotFile {
  snap: Snapshot;
  crc: number;
}

/** Snapshot files kept, as storage's SnapshotStore keeps (newest last). */
const SNAPSHOTS_KEPT = 2;

interface DiskState {
  /** Snapshot files, oldest first. */
  snapshots: SnapshotFile[];
  /** Index of `entries[0]`. */
  first: number;
  /** One framed record per entry; the last may be torn (cut short). */
  entries: Uint8Array[];
  /** The hardstate file's bytes (undefined: no file yet). */
  hardState?: Uint8Array;
  members: Members;
}

/** A write: applies itself to a disk state; `tear` (0..1) cuts it at that fraction of its bytes. */
type Op = ((s: DiskState, tear?: number) => void) & { hard?: true };

function copy(s: DiskState): DiskState {
  return { ...s, entries: [...s.entries], snapshots: [...s.snapshots] };
}

/** Writes a snapshot file (atomically, as SnapshotStore renames it) and prunes the oldest. */
function keepSnapshot(s: DiskState, snap: Snapshot): void {
  s.snapshots.push({ snap, crc: crc32c(snap.data) });
  if (s.snapshots.length > SNAPSHOTS_KEPT) s.snapshots.shift();
}

/** The newest snapshot file (undefined when none). */
function newest(s: DiskState): Snapshot | undefined {
  return s.snapshots[s.snapshots.length - 1]?.snap;
}

/** Fsync latency bounds, virtual ms, and the disk's fault rates. */
export interface SimDiskLatency {
  minMs: number;
  maxMs: number;
  /** Chance that a write's fsync fails (default 0). */
  fsyncFailure?: number;
  /** Chance that a crash tears the first write it loses (default 0). */
  tornWrite?: number;
  /** Chance that a crash leaves a hard-state write in flight torn (default 0). */
  tornHardState?: number;
}

/** Damage waiting for {@link SimReplicaDisk.repair}: what to put back. */
interface Damage {
  kind: "bit flip" | "torn hard state" | "damaged snapshot";
  undo(s: DiskState): void;
  /** Position of the flipped record in `entries` (bit flips). */
  record?: number;
}

/** Frames entries as storage's log records. */
function frame(entries: Entry[]): Uint8Array[] {
  return entries.map((e) => {
    const payload = LogEntry.encode({
      term: e.term,
      index: e.index,
      type: e.type,
      data: e.data,
    });
    const out = new Uint8Array(payload.length + RECORD_OVERHEAD_BYTES);
    writeRecord(out, 0, e.index, payload);
    return out;
  });
}

/** The disk of one server: survives its crashes. */
export class SimReplicaDisk {
  #durable: DiskState = {
    snapshots: [],
    first: 1,
    entries: [],
    members: {},
  };
  /** What the running process sees (durable + in flight). */
  #cache: DiskState = copy(this.#durable);
  #inFlight: Op[] = [];
  #busyUntil = 0;
  /** Writes lost in crashes so far. */
  lostWrites = 0;
  /** Crashes that left a torn last record. */
  tornWrites = 0;
  /** Torn records that recovery dropped (by their CRC or length). */
  tornRecordsDropped = 0;
  /** Fsyncs that failed. */
  fsyncFailures = 0;
  /** Writes refused with ENOSPC. */
  enospcFailures = 0;
  /** Bits flipped in durable log records. */
  bitFlips = 0;
  /** Hard-state files left torn by a crash. */
  tornHardStates = 0;
  /** Recoveries that refused damaged data. */
  refusedRecoveries = 0;
  /** Newest snapshots damaged. */
  snapshotDamages = 0;
  /** Recoveries that skipped a damaged newest snapshot for the older one. */
  snapshotFallbacks = 0;
  /**
   * True once recovery refused a damaged snapshot the log no longer
   * covers: the data is gone on this disk (production's answer is to
   * replace the member), so it is never repaired.
   */
  lost = false;
  /** While true, every write fails with ENOSPC. */
  full = false;
  /** Damage recovery has not refused yet, or not yet repaired. */
  #damage: Damage[] = [];
  /** The error of the failed fsync of the current life, if any. */
  #failed: Error | undefined;
  /** Called when a write fails (a failed fsync, outside any process; ENOSPC, inside it). */
  onWriteFailure: (e: Error) => void = () => {};
  /** Called when recovery accepted damaged data or cut intact records (a bug). */
  onRecoveryViolation: (message: string) => void = () => {};

  /**
   * @param sched the simulation's scheduler.
   * @param prng decides latencies and what a crash keeps.
   * @param latency fsync latency bounds.
   */
  constructor(
    readonly sched: Scheduler,
    readonly prng: Prng,
    readonly latency: SimDiskLatency,
  ) {}

  /** Writes not yet durable. */
  get inFlight(): number {
    return this.#inFlight.length;
  }

  /**
   * The process died (kill -9): the writes it had issued reach the disk
   * only as a random prefix (it may have died between two of them). With
   * `powerLoss` the page cache is gone too: usually nothing that was not
   * fsync'd survives (a fifth of the time, a prefix the kernel had flushed).
   */
  crash(powerLoss = false): void {
    const n = this.#inFlight.length;
    const keep = this.#failed || (powerLoss && !this.prng.chance(0.2))
      ? 0
      : this.prng.int(n + 1);
    for (const op of this.#inFlight.slice(0, keep)) op(this.#durable);
    const lost = this.#inFlight[keep];
    // A hard-state write among the lost ones may leave its file torn (the
    // rename landed, not all of the data it names).
    const hard = this.#inFlight.slice(keep).find((op) => op.hard);
    if (hard && this.prng.chance(this.latency.tornHardState ?? 0)) {
      const before = this.#durable.hardState;
      hard(this.#durable, this.prng.float());
      this.tornHardStates++;
      this.#damage.push({
        kind: "torn hard state",
        undo: (s) => s.hardState = before,
      });
    } else if (
      lost && !this.#failed && this.prng.chance(this.latency.tornWrite ?? 0)
    ) {
      // Only log records tear here; a hard-state write lands whole (an
      // atomic rename), as it always did (the draw is kept for old seeds).
      const tear = this.prng.float();
      lost(this.#durable, lost.hard ? undefined : tear);
    }
    this.lostWrites += this.#inFlight.length - keep;
    this.#inFlight = [];
    this.#failed = undefined;
    this.#cache = copy(this.#durable);
    this.#busyUntil = this.sched.now;
  }

  /**
   * Flips one random bit of a random durable log record (the process must
   * be down). The length field of the last record is spared: a flip that
   * lengthens it cannot be told from a torn write (etcd's WAL has the same
   * limit), and that record would be cut like one.
   * @returns false when the log holds no record.
   */
  flipBit(): boolean {
    const es = this.#durable.entries;
    if (es.length === 0) return false;
    const i = this.prng.int(es.length);
    const rec = es[i]!;
    const from = i === es.length - 1 ? 4 : 0;
    if (rec.length <= from) return false;
    const at = from + this.prng.int(rec.length - from);
    const flipped = rec.slice();
    flipped[at]! ^= 1 << this.prng.int(8);
    es[i] = flipped;
    this.#cache = copy(this.#durable);
    this.bitFlips++;
    this.#damage.push({
      kind: "bit flip",
      record: i,
      undo: (s) => {
        if (s.entries[i] === flipped) s.entries[i] = rec;
      },
    });
    return true;
  }

  /**
   * Cuts the durable hardstate file at a random byte (the process must be
   * down): what a file system that lost part of the file leaves.
   * @returns false when there is no file yet.
   */
  tearHardState(): boolean {
    const before = this.#durable.hardState;
    if (before === undefined) return false;
    this.#durable.hardState = before.subarray(0, this.prng.int(before.length));
    this.#cache = copy(this.#durable);
    this.tornHardStates++;
    this.#damage.push({
      kind: "torn hard state",
      undo: (s) => s.hardState = before,
    });
    return true;
  }

  /**
   * Flips one bit of the newest snapshot file's data (the process must be
   * down): its CRC32C no longer matches, so recovery must skip it for the
   * older one, or refuse when the log does not reach back to that one.
   * @returns false when there is no snapshot.
   */
  damageSnapshot(prng: Prng): boolean {
    const snaps = this.#durable.snapshots;
    const i = snaps.length - 1;
    const file = snaps[i];
    if (!file || file.snap.data.length === 0) return false;
    const data = file.snap.data.slice();
    data[prng.int(data.length)]! ^= 1 << prng.int(8);
    const damaged = { snap: { ...file.snap, data }, crc: file.crc };
    snaps[i] = damaged;
    this.#cache = copy(this.#durable);
    this.snapshotDamages++;
    this.#damage.push({
      kind: "damaged snapshot",
      undo: (s) => {
        const at = s.snapshots.indexOf(damaged);
        if (at >= 0) s.snapshots[at] = file;
      },
    });
    return true;
  }

  /** True while damage waits for {@link repair}. */
  get damaged(): boolean {
    return this.#damage.length > 0;
  }

  /** Puts the damaged bytes back (an operator restoring them from a mirror); the process must be down. */
  repair(): void {
    for (const d of this.#damage.reverse()) d.undo(this.#durable);
    this.#damage = [];
    this.#cache = copy(this.#durable);
  }

  /** The storage port for the current life of `proc`. */
  open(proc: SimProcess): ReplicaStorage {
    const write = (op: Op): Promise<void> => {
      if (this.full) {
        this.enospcFailures++;
        const e = new Error("ENOSPC: no space left on device (simulated)");
        this.onWriteFailure(e);
        return Promise.reject(e);
      }
      op(this.#cache);
      this.#inFlight.push(op);
      const gen = proc.generation;
      const lat = this.latency.minMs +
        this.prng.float() * (this.latency.maxMs - this.latency.minMs);
      this.#busyUntil = Math.max(this.#busyUntil, this.sched.now) + lat;
      return new Promise<void>((resolve, reject) => {
        this.sched.at(this.#busyUntil, () => {
          if (gen !== proc.generation) return; // lost in a crash
          // FIFO: the first in-flight write is this one.
          const mine = this.#inFlight.shift()!;
          if (
            !this.#failed && this.prng.chance(this.latency.fsyncFailure ?? 0)
          ) {
            this.fsyncFailures++;
            this.#failed = new Error("EIO: fsync failed (simulated)");
            this.onWriteFailure(this.#failed);
          }
          const failed = this.#failed;
          if (failed) return proc.run(() => reject(failed));
          mine(this.#durable);
          proc.run(resolve);
        });
      });
    };
    // deno-lint-ignore no-this-alias
    const disk = this;
    return {
      recover(): Promise<RecoveredState> {
        const s = disk.#cache;
        // The log as its bytes, scanned as SegmentedLog.open scans a segment.
        const bytes = new Uint8Array(
          s.entries.reduce((n, b) => n + b.length, 0),
        );
        let at = 0;
        for (const b of s.entries) {
          bytes.set(b, at);
          at += b.length;
        }
        // scanRecords checks each record's length, index and CRC32C.
        const scan = scanRecords(bytes, s.first, 1 << 30);
        const view = new DataView(bytes.buffer);
        const bad = s.first + scan.offsets.length;
        // The newest snapshot file whose checksum holds, as
        // SnapshotStore.loadNewest reads them; damaged ones are skipped.
        const skipped: string[] = [];
        let snapshot: Snapshot | undefined;
        for (let i = s.snapshots.length - 1; i >= 0 && !snapshot; i--) {
          const f = s.snapshots[i]!;
          const why = `snapshot ${f.snap.meta.index} (checksum mismatch)`;
          if (crc32c(f.snap.data) === f.crc) snapshot = f.snap;
          else skipped.push(why);
        }
        const snapIndex = snapshot?.meta.index ?? 0;
        let hardState: HardState;
        try {
          if (
            scan.stop === "corrupt" ||
            (scan.stop === "torn" &&
              intactRecordAfter(bytes, scan.end, bad + 1, 1 << 30) !== null)
          ) {
            // What SegmentedLog.open throws for a damaged record.
            throw new StorageError(
              "corrupt",
              `corrupt log record at index ${bad}`,
            );
          }
          // Production's rule (packages/replication): the log must reach
          // back to the snapshot it falls back to.
          const gap = snapshotGap(
            {
              firstIndex: s.first,
              lastIndex: s.first + scan.offsets.length - 1,
            },
            snapIndex,
            skipped,
          );
          if (gap) {
            disk.lost = true;
            throw gap;
          }
          hardState = s.hardState === undefined
            ? { term: 0, vote: 0, commit: 0 }
            : decodeHardState(s.hardState);
        } catch (e) {
          if (disk.damaged) disk.refusedRecoveries++;
          return Promise.reject(e);
        }
        for (const d of disk.#damage) {
          // Recovery accepted the disk: any damage must have been in a torn tail it cut.
          if (d.record !== undefined && d.record < scan.offsets.length) {
            disk.onRecoveryViolation(
              `recovery accepted log record ${
                s.first + d.record
              } with a flipped bit`,
            );
          } else if (d.kind === "damaged snapshot") {
            disk.snapshotFallbacks++;
          } else if (d.kind === "torn hard state") {
            disk.onRecoveryViolation("recovery accepted a torn hard state");
          }
        }
        if (disk.damaged && scan.offsets.length < s.entries.length - 1) {
          disk.onRecoveryViolation(
            `recovery cut ${
              s.entries.length - scan.offsets.length
            } records after a bit flip: more than a torn tail`,
          );
        }
        disk.#damage = [];
        if (scan.stop === "torn") {
          // Cut the torn tail, as the production log does on open.
          disk.tornRecordsDropped += scan.droppedRecords;
          s.entries.length = scan.offsets.length;
          disk.#durable.entries.length = Math.min(
            disk.#durable.entries.length,
            scan.offsets.length,
          );
        }
        // As on disk: the log may start before the snapshot (not yet compacted).
        return Promise.resolve({
          ...(snapshot ? { snapshot } : {}),
          entries: scan.offsets.slice(Math.max(0, snapIndex + 1 - s.first))
            .map((off) => {
              const len = view.getUint32(off, true);
              const at = off + RECORD_HEADER_BYTES;
              return LogEntry.decode(bytes.subarray(at, at + len)) as Entry;
            }),
          hardState,
          members: { ...s.members },
        });
      },
      get lastIndex() {
        const s = disk.#cache;
        return s.entries.length > 0
          ? s.first + s.entries.length - 1
          : (newest(s)?.meta.index ?? 0);
      },
      get byteSize() {
        return disk.#cache.entries.reduce((n, b) => n + b.length, 0);
      },
      append(entries: Entry[]): Promise<void> {
        const records = frame(entries);
        const at = entries[0]!.index;
        return write((s, tear) => {
          if (s.entries.length === 0) s.first = at;
          s.entries.length = at - s.first;
          if (tear === undefined) return void s.entries.push(...records);
          // Only the bytes before the cut reached the disk.
          let cut = Math.floor(
            tear * records.reduce((n, r) => n + r.length, 0),
          );
          for (const r of records) {
            if (cut <= 0) break;
            s.entries.push(cut >= r.length ? r : r.subarray(0, cut));
            cut -= r.length;
          }
          disk.tornWrites++;
        });
      },
      truncateSuffix(from: number): Promise<void> {
        return write((s) => {
          if (from >= s.first) {
            s.entries.length = Math.min(s.entries.length, from - s.first);
          }
        });
      },
      writeHardState(hs: HardState): Promise<void> {
        const bytes = encodeHardState(hs);
        const op: Op = (s, tear) => {
          s.hardState = tear === undefined
            ? bytes
            : bytes.subarray(0, Math.floor(tear * bytes.length));
        };
        op.hard = true;
        return write(op);
      },
      writeMembers(members: Members): Promise<void> {
        const v = { ...members };
        return write((s) => {
          s.members = v;
        });
      },
      installSnapshot(snap: Snapshot): Promise<void> {
        return write((s) => {
          keepSnapshot(s, snap);
          s.first = snap.meta.index + 1;
          s.entries = [];
        });
      },
      saveSnapshot(snap: Snapshot): Promise<void> {
        return write((s) => {
          if ((newest(s)?.meta.index ?? 0) < snap.meta.index) {
            keepSnapshot(s, snap);
          }
        });
      },
      compactPrefix(index: number): Promise<void> {
        return write((s) => {
          const n = Math.min(index - s.first + 1, s.entries.length);
          if (n <= 0) return;
          s.entries.splice(0, n);
          s.first += n;
        });
      },
      close: () => Promise.resolve(),
    };
  }
}
