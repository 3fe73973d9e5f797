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
 *   file system remounted read-only does), until the process restarts.
 *
 * Log entries are stored as the production log's bytes: the raft entry
 * codec inside storage's record framing (length, index, payload, CRC32C),
 * and recovery runs storage's own `scanRecords` over them, which must stop
 * at a torn record; the hard state and members are replaced atomically (a
 * rename), so they are never torn.
 */
import type { Entry, HardState, Snapshot } from "@strata/raft";
import {
  LogEntry,
  type RecoveredState,
  type ReplicaStorage,
} from "@strata/replication";
import {
  RECORD_HEADER_BYTES,
  RECORD_OVERHEAD_BYTES,
  scanRecords,
  writeRecord,
} from "@strata/storage";
import type { Prng } from "./prng.ts";
import type { Scheduler } from "./scheduler.ts";
import type { SimProcess } from "./sim_process.ts";

type Members = RecoveredState["members"];

interface DiskState {
  snapshot?: Snapshot;
  /** Index of `entries[0]`. */
  first: number;
  /** One framed record per entry; the last may be torn (cut short). */
  entries: Uint8Array[];
  hardState: HardState;
  members: Members;
}

/** A write: applies itself to a disk state; `tear` (0..1) cuts it at that fraction of its bytes. */
type Op = (s: DiskState, tear?: number) => void;

function copy(s: DiskState): DiskState {
  return { ...s, entries: [...s.entries] };
}

/** Fsync latency bounds, virtual ms, and the disk's fault rates. */
export interface SimDiskLatency {
  minMs: number;
  maxMs: number;
  /** Chance that a write's fsync fails (default 0). */
  fsyncFailure?: number;
  /** Chance that a crash tears the first write it loses (default 0). */
  tornWrite?: number;
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
    first: 1,
    entries: [],
    hardState: { term: 0, vote: 0, commit: 0 },
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
  /** The error of the failed fsync of the current life, if any. */
  #failed: Error | undefined;
  /** Called (outside any process) when an fsync fails. */
  onFsyncFailure: (e: Error) => void = () => {};

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
    if (
      keep < n && !this.#failed &&
      this.prng.chance(this.latency.tornWrite ?? 0)
    ) {
      this.#inFlight[keep]!(this.#durable, this.prng.float());
    }
    this.lostWrites += this.#inFlight.length - keep;
    this.#inFlight = [];
    this.#failed = undefined;
    this.#cache = copy(this.#durable);
    this.#busyUntil = this.sched.now;
  }

  /** The storage port for the current life of `proc`. */
  open(proc: SimProcess): ReplicaStorage {
    const write = (op: Op): Promise<void> => {
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
            this.onFsyncFailure(this.#failed);
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
        if (scan.stop === "corrupt") {
          return Promise.reject(
            new Error(
              `corrupt log record at index ${s.first + scan.offsets.length}`,
            ),
          );
        }
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
        const snapIndex = s.snapshot?.meta.index ?? 0;
        return Promise.resolve({
          ...(s.snapshot ? { snapshot: s.snapshot } : {}),
          entries: scan.offsets.slice(Math.max(0, snapIndex + 1 - s.first))
            .map((off) => {
              const len = view.getUint32(off, true);
              const at = off + RECORD_HEADER_BYTES;
              return LogEntry.decode(bytes.subarray(at, at + len)) as Entry;
            }),
          hardState: { ...s.hardState },
          members: { ...s.members },
        });
      },
      get lastIndex() {
        const s = disk.#cache;
        return s.entries.length > 0
          ? s.first + s.entries.length - 1
          : (s.snapshot?.meta.index ?? 0);
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
        const v = { ...hs };
        return write((s) => {
          s.hardState = v;
        });
      },
      writeMembers(members: Members): Promise<void> {
        const v = { ...members };
        return write((s) => {
          s.members = v;
        });
      },
      installSnapshot(snap: Snapshot): Promise<void> {
        return write((s) => {
          s.snapshot = snap;
          s.first = snap.meta.index + 1;
          s.entries = [];
        });
      },
      saveSnapshot(snap: Snapshot): Promise<void> {
        return write((s) => {
          if ((s.snapshot?.meta.index ?? 0) < snap.meta.index) {
            s.snapshot = snap;
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
