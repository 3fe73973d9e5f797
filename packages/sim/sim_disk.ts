import {
  type ConfState,
  type Entry,
  type HardState,
  MemoryStorage,
  type Snapshot,
} from "@strata/raft";
import type { Prng } from "./prng.ts";
import { SimError } from "./sim_error.ts";

type DiskOp =
  | { kind: "snapshot"; snapshot: Snapshot }
  | { kind: "entry"; entry: Entry }
  | { kind: "hardState"; hardState: HardState };

/**
 * A node's simulated disk for raft state. Writes are buffered until
 * `sync()`; a crash keeps only a random prefix of the unsynced writes (the
 * last kept one may be torn, which a checksummed log detects and drops, so
 * it counts as lost). Within a Ready the hard state is written last, as a
 * write-ahead log does, so a surviving commit index always has its entries.
 */
export class SimDisk {
  #durable = new MemoryStorage();
  #pending: DiskOp[] = [];
  /** Highest commit and term ever made durable (must never go backwards). */
  maxCommit = 0;
  maxTerm = 0;
  /** Unsynced writes lost by crashes. */
  lostWrites = 0;

  /** Buffers a snapshot write (received from the leader). */
  writeSnapshot(snapshot: Snapshot): void {
    this.#pending.push({ kind: "snapshot", snapshot });
  }

  /** Buffers entry appends. */
  writeEntries(entries: readonly Entry[]): void {
    for (const entry of entries) this.#pending.push({ kind: "entry", entry });
  }

  /** Buffers a hard state write. */
  writeHardState(hardState: HardState): void {
    this.#pending.push({ kind: "hardState", hardState: { ...hardState } });
  }

  /** True when writes are waiting for a sync. */
  get dirty(): boolean {
    return this.#pending.length > 0;
  }

  /**
   * Makes every buffered write durable.
   * @throws SimError `invariant` when the durable commit or term would go backwards.
   */
  sync(): void {
    this.#applyOps(this.#pending);
    this.#pending = [];
  }

  #applyOps(ops: readonly DiskOp[]): void {
    const d = this.#durable;
    let run: Entry[] = [];
    const flush = () => {
      if (run.length > 0) d.append(run);
      run = [];
    };
    for (const op of ops) {
      if (op.kind === "entry") {
        run.push(op.entry);
        continue;
      }
      flush();
      if (op.kind === "snapshot") {
        if (op.snapshot.meta.index > d.snapshot().meta.index) {
          d.applySnapshot(op.snapshot);
        }
      } else {
        const hs = op.hardState;
        if (hs.commit < this.maxCommit || hs.term < this.maxTerm) {
          throw new SimError(
            "invariant",
            `durable commit/term went backwards: commit ${this.maxCommit} -> ${hs.commit}, term ${this.maxTerm} -> ${hs.term}`,
          );
        }
        this.maxCommit = hs.commit;
        this.maxTerm = hs.term;
        d.setHardState(hs);
      }
    }
    flush();
  }

  /**
   * Simulates power loss: a random prefix of the unsynced writes survives,
   * the rest is lost.
   */
  crash(prng: Prng): void {
    const keep = prng.int(this.#pending.length + 1);
    this.lostWrites += this.#pending.length - keep;
    this.#applyOps(this.#pending.slice(0, keep));
    this.#pending = [];
  }

  /**
   * Writes a state machine snapshot and compacts the durable log up to it
   * (EndSnapshot; the snapshot file is synced on its own). Ignored when a
   * newer snapshot is already durable.
   */
  saveSnapshot(
    index: number,
    confState: ConfState,
    data: Uint8Array,
    keepEntries = 0,
  ): void {
    const d = this.#durable;
    if (index <= d.snapshot().meta.index || index > d.lastIndex()) return;
    d.createSnapshot(index, confState, data);
    d.compact(Math.max(d.firstIndex() - 1, index - keepEntries));
  }

  /** What a restarted node finds on disk. */
  load(): MemoryStorage {
    const d = this.#durable;
    const ms = new MemoryStorage();
    const snap = d.snapshot();
    if (snap.meta.index > 0) ms.applySnapshot(snap);
    if (d.lastIndex() >= d.firstIndex()) {
      ms.append(d.entries(d.firstIndex(), d.lastIndex() + 1, Infinity));
    }
    ms.setHardState(d.hardState);
    return ms;
  }

  /** Snapshot currently durable. */
  snapshot(): Snapshot {
    return this.#durable.snapshot();
  }
}
