import type {
  ConfState,
  Entry,
  HardState,
  Snapshot,
  SnapshotMeta,
} from "./messages.ts";
import { entrySize } from "./messages.ts";
import { RaftError } from "./raft_error.ts";

/**
 * What the raft core reads from the durable log. The application owns the
 * writes (it persists each Ready before sending its messages) and backs
 * this with a disk log; {@link MemoryStorage} is the in-memory version used
 * by tests, the simulator and as a write-through cache.
 *
 * Indexes are 1-based. After compaction, `firstIndex() - 1` is the index of
 * the latest snapshot and its term is still answerable by `term()`.
 */
export interface Storage {
  /** The persisted hard state and the membership to start from. */
  initialState(): { hardState: HardState; confState: ConfState };
  /**
   * Entries in [lo, hi), at least one if any exist, stopping once `maxBytes`
   * of payload is reached.
   * @throws RaftError `compacted` (lo < firstIndex) or `unavailable` (hi > lastIndex+1).
   */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /**
   * Term of the entry at `index` (valid from firstIndex()-1 to lastIndex()).
   * @throws RaftError `compacted` or `unavailable`.
   */
  term(index: number): number;
  /** Index of the first entry still in the log (snapshot index + 1). */
  firstIndex(): number;
  /** Index of the last entry (the snapshot index when the log is empty). */
  lastIndex(): number;
  /** The most recent snapshot (its data is sent to lagging followers). */
  snapshot(): Snapshot;
}

const EMPTY = new Uint8Array(0);

/**
 * An in-memory {@link Storage}. The application calls `setHardState`,
 * `append` and `applySnapshot` with the contents of each Ready, and
 * `createSnapshot` + `compact` to cut the log (BeginSnapshot/EndSnapshot).
 */
export class MemoryStorage implements Storage {
  /** The last hard state recorded. */
  hardState: HardState = { term: 0, vote: 0, commit: 0 };
  #snap: Snapshot = {
    meta: { index: 0, term: 0, confState: { voters: [], learners: [] } },
    data: EMPTY,
  };
  // ents[0] is a dummy standing for the snapshot's (index, term).
  #ents: Entry[] = [{ term: 0, index: 0, type: "normal", data: EMPTY }];

  /** @param confState membership to report when no snapshot exists yet. */
  constructor(confState?: ConfState) {
    if (confState) this.#snap.meta.confState = cloneConf(confState);
  }

  /** The recorded hard state and the snapshot's membership. */
  initialState(): { hardState: HardState; confState: ConfState } {
    return {
      hardState: { ...this.hardState },
      confState: cloneConf(this.#snap.meta.confState),
    };
  }

  /** Records the hard state of a Ready. */
  setHardState(hs: HardState): void {
    this.hardState = { ...hs };
  }

  /** See {@link Storage.entries}. @throws RaftError `compacted` or `unavailable`. */
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const offset = this.#ents[0]!.index;
    if (lo <= offset) {
      throw new RaftError("compacted", `entry ${lo} is compacted`);
    }
    if (hi > this.lastIndex() + 1) {
      throw new RaftError(
        "unavailable",
        `entries up to ${hi - 1} requested, last is ${this.lastIndex()}`,
      );
    }
    const out: Entry[] = [];
    let size = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.#ents[i - offset]!;
      size += entrySize(e);
      if (out.length > 0 && size > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  /** See {@link Storage.term}. @throws RaftError `compacted` or `unavailable`. */
  term(index: number): number {
    const offset = this.#ents[0]!.index;
    if (index < offset) {
      throw new RaftError("compacted", `term of ${index} is compacted`);
    }
    const e = this.#ents[index - offset];
    if (e === undefined) {
      throw new RaftError("unavailable", `no entry ${index}`);
    }
    return e.term;
  }

  /** First index still held. */
  firstIndex(): number {
    return this.#ents[0]!.index + 1;
  }

  /** Last index held. */
  lastIndex(): number {
    return this.#ents[0]!.index + this.#ents.length - 1;
  }

  /** Latest snapshot. */
  snapshot(): Snapshot {
    return this.#snap;
  }

  /** Number of entries held (for tests and metrics). */
  get length(): number {
    return this.#ents.length - 1;
  }

  /**
   * Appends entries of a Ready, truncating any conflicting suffix first.
   * Entries older than the snapshot are ignored.
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    let ents = entries;
    if (ents[0]!.index < first) {
      ents = ents.filter((e) => e.index >= first);
      if (ents.length === 0) return;
    }
    const offset = ents[0]!.index - this.#ents[0]!.index;
    if (offset > this.#ents.length) {
      throw new RaftError(
        "invariant",
        `append at ${ents[0]!.index} leaves a gap after ${this.lastIndex()}`,
      );
    }
    this.#ents.length = offset;
    for (const e of ents) this.#ents.push(e);
  }

  /** Replaces the whole log with a snapshot received from the leader. */
  applySnapshot(snap: Snapshot): void {
    if (snap.meta.index <= this.#snap.meta.index) {
      throw new RaftError(
        "snapshot_out_of_date",
        `snapshot ${snap.meta.index} is not newer than ${this.#snap.meta.index}`,
      );
    }
    this.#snap = snap;
    this.#ents = [{
      term: snap.meta.term,
      index: snap.meta.index,
      type: "normal",
      data: EMPTY,
    }];
  }

  /**
   * Records a snapshot of the state machine at `index` (which must be
   * applied and in the log): BeginSnapshot's result. The log is untouched
   * until {@link compact} (EndSnapshot).
   * @throws RaftError `snapshot_out_of_date` or `unavailable`.
   */
  createSnapshot(
    index: number,
    confState: ConfState,
    data: Uint8Array,
  ): Snapshot {
    if (index <= this.#snap.meta.index) {
      throw new RaftError(
        "snapshot_out_of_date",
        `snapshot at ${index} is not newer than ${this.#snap.meta.index}`,
      );
    }
    if (index > this.lastIndex()) {
      throw new RaftError("unavailable", `snapshot index ${index} > last`);
    }
    const meta: SnapshotMeta = {
      index,
      term: this.term(index),
      confState: cloneConf(confState),
    };
    this.#snap = { meta, data };
    return this.#snap;
  }

  /**
   * Drops entries up to and including `index` (EndSnapshot). `index` must
   * not exceed the latest snapshot's index, so the prefix is recoverable.
   */
  compact(index: number): void {
    const offset = this.#ents[0]!.index;
    if (index <= offset) return;
    if (index > this.#snap.meta.index) {
      throw new RaftError(
        "invariant",
        `compact to ${index} beyond snapshot ${this.#snap.meta.index}`,
      );
    }
    const keep = this.#ents.slice(index - offset);
    keep[0] = { ...keep[0]!, data: EMPTY, type: "normal" };
    this.#ents = keep;
  }
}

/** A copy of a membership. */
export function cloneConf(cs: ConfState): ConfState {
  const out: ConfState = { voters: [...cs.voters], learners: [...cs.learners] };
  if (cs.votersOutgoing?.length) {
    out.votersOutgoing = [...cs.votersOutgoing];
    out.learnersNext = [...(cs.learnersNext ?? [])];
    out.autoLeave = cs.autoLeave ?? false;
  }
  return out;
}
