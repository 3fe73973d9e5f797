/**
 * A simulated disk for one replica (`ReplicaStorage` of packages/
 * replication). Writes land in the page cache at once (what the process
 * reads back) and become durable one by one, in order, after a seeded
 * fsync latency; the promise of a write resolves (inside the process) only
 * once it is durable. A crash keeps what was durable plus a random prefix
 * of the writes still in flight and forgets the rest; a power loss usually
 * keeps none of them. Entries are stored as the bytes of the production
 * log's codec, so recovery decodes what was encoded.
 */
import type { Entry, HardState, Snapshot } from "@strata/raft";
import {
  LogEntry,
  type RecoveredState,
  type ReplicaStorage,
} from "@strata/replication";
import type { Prng } from "./prng.ts";
import type { Scheduler } from "./scheduler.ts";
import type { SimProcess } from "./sim_process.ts";

type Members = RecoveredState["members"];

interface DiskState {
  snapshot?: Snapshot;
  /** Index of `entries[0]`. */
  first: number;
  entries: Uint8Array[];
  hardState: HardState;
  members: Members;
}

type Op = (s: DiskState) => void;

function copy(s: DiskState): DiskState {
  return { ...s, entries: [...s.entries] };
}

/** Fsync latency bounds, virtual ms. */
export interface SimDiskLatency {
  minMs: number;
  maxMs: number;
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
    const keep = powerLoss && !this.prng.chance(0.2) ? 0 : this.prng.int(n + 1);
    for (const op of this.#inFlight.slice(0, keep)) op(this.#durable);
    this.lostWrites += this.#inFlight.length - keep;
    this.#inFlight = [];
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
      return new Promise<void>((resolve) => {
        this.sched.at(this.#busyUntil, () => {
          if (gen !== proc.generation) return; // lost in a crash
          // FIFO: the first in-flight write is this one.
          this.#inFlight.shift()!(this.#durable);
          proc.run(resolve);
        });
      });
    };
    // deno-lint-ignore no-this-alias
    const disk = this;
    return {
      recover(): Promise<RecoveredState> {
        const s = disk.#cache;
        // As on disk: the log may start before the snapshot (not yet compacted).
        const snapIndex = s.snapshot?.meta.index ?? 0;
        return Promise.resolve({
          ...(s.snapshot ? { snapshot: s.snapshot } : {}),
          entries: s.entries.slice(Math.max(0, snapIndex + 1 - s.first))
            .map((b) => LogEntry.decode(b) as Entry),
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
        const bytes = entries.map((e) =>
          LogEntry.encode({
            term: e.term,
            index: e.index,
            type: e.type,
            data: e.data,
          })
        );
        const at = entries[0]!.index;
        return write((s) => {
          if (s.entries.length === 0) s.first = at;
          s.entries.length = at - s.first;
          s.entries.push(...bytes);
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
