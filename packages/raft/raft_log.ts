import type { Entry, Snapshot } from "./messages.ts";
import { entrySize } from "./messages.ts";
import { isRaftError, RaftError } from "./raft_error.ts";
import type { Storage } from "./storage.ts";

/**
 * The node's view of the log: what storage holds (stable) plus entries and
 * a snapshot not yet persisted (unstable), with the commit and applied
 * indexes. Internal to the core.
 */
export class RaftLog {
  /** Entries not yet persisted start at this index. */
  unstableOffset: number;
  unstableEntries: Entry[] = [];
  /** A snapshot received from the leader and not yet persisted. */
  unstableSnapshot: Snapshot | undefined;
  committed: number;
  applied: number;

  constructor(readonly storage: Storage, applied = 0) {
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstableOffset = last + 1;
    this.committed = first - 1;
    this.applied = Math.max(first - 1, applied);
  }

  firstIndex(): number {
    if (this.unstableSnapshot) return this.unstableSnapshot.meta.index + 1;
    return this.storage.firstIndex();
  }

  lastIndex(): number {
    if (this.unstableEntries.length > 0) {
      return this.unstableOffset + this.unstableEntries.length - 1;
    }
    if (this.unstableSnapshot) return this.unstableSnapshot.meta.index;
    return this.storage.lastIndex();
  }

  lastTerm(): number {
    return this.term(this.lastIndex()) ?? 0;
  }

  /** Term at `i`, or undefined when compacted or beyond the end. */
  term(i: number): number | undefined {
    if (i >= this.unstableOffset) {
      const e = this.unstableEntries[i - this.unstableOffset];
      if (e) return e.term;
      if (
        this.unstableSnapshot && i === this.unstableSnapshot.meta.index
      ) return this.unstableSnapshot.meta.term;
      return undefined;
    }
    if (this.unstableSnapshot) {
      if (i === this.unstableSnapshot.meta.index) {
        return this.unstableSnapshot.meta.term;
      }
      return undefined;
    }
    return this.#storageTerm(i);
  }

  #storageTerm(i: number): number | undefined {
    if (i < this.storage.firstIndex() - 1 || i > this.storage.lastIndex()) {
      return undefined;
    }
    try {
      return this.storage.term(i);
    } catch (e) {
      if (isRaftError(e, "compacted") || isRaftError(e, "unavailable")) {
        return undefined;
      }
      throw e;
    }
  }

  matchTerm(i: number, term: number): boolean {
    return this.term(i) === term;
  }

  /**
   * Follower append: if the entry at `index` has `logTerm`, appends the new
   * entries (truncating conflicts), advances commit, and returns the last
   * index now known to match; otherwise undefined.
   */
  maybeAppend(
    index: number,
    logTerm: number,
    committed: number,
    ents: readonly Entry[],
  ): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      if (ci <= this.committed) {
        throw new RaftError(
          "invariant",
          `entry ${ci} conflicts with committed entry (commit ${this.committed})`,
        );
      }
      this.append(ents.slice(ci - (index + 1)));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  /**
   * Index of the first entry that is new or conflicts with the log, or 0
   * when every entry is already present.
   */
  findConflict(ents: readonly Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * The largest index ≤ `index` whose term is ≤ `term` (fast backup: skips
   * a whole term of divergent entries per round trip).
   */
  findConflictByTerm(index: number, term: number): [number, number] {
    let i = index;
    for (; i > 0; i--) {
      const t = this.term(i);
      if (t === undefined) return [i, 0];
      if (t <= term) return [i, t];
    }
    return [0, 0];
  }

  /** Appends entries after truncating anything from their first index on. */
  append(ents: readonly Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0]!.index;
    if (after - 1 < this.committed) {
      throw new RaftError(
        "invariant",
        `append after ${after - 1} is below commit ${this.committed}`,
      );
    }
    if (after === this.unstableOffset + this.unstableEntries.length) {
      for (const e of ents) this.unstableEntries.push(e);
    } else if (after <= this.unstableOffset) {
      // Replaces the unstable part and shadows storage from `after` on.
      this.unstableOffset = after;
      this.unstableEntries = [...ents];
    } else {
      this.unstableEntries = this.unstableEntries.slice(
        0,
        after - this.unstableOffset,
      );
      for (const e of ents) this.unstableEntries.push(e);
    }
    return this.lastIndex();
  }

  /**
   * Entries in [lo, hi) up to `maxBytes` of payload (at least one).
   * @throws RaftError `compacted` when lo is below the first index.
   */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo >= hi) return [];
    if (lo < this.firstIndex()) {
      throw new RaftError("compacted", `entry ${lo} is compacted`);
    }
    const out: Entry[] = [];
    let size = 0;
    if (lo < this.unstableOffset) {
      const stored = this.storage.entries(
        lo,
        Math.min(hi, this.unstableOffset),
        maxBytes,
      );
      for (const e of stored) {
        size += entrySize(e);
        out.push(e);
      }
      if (out.length < Math.min(hi, this.unstableOffset) - lo) return out;
    }
    const start = Math.max(lo, this.unstableOffset);
    for (let i = start; i < hi; i++) {
      const e = this.unstableEntries[i - this.unstableOffset];
      if (!e) break;
      size += entrySize(e);
      if (out.length > 0 && size > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  commitTo(i: number): void {
    if (i > this.committed) {
      if (i > this.lastIndex()) {
        throw new RaftError(
          "invariant",
          `commit ${i} is beyond the last index ${this.lastIndex()}`,
        );
      }
      this.committed = i;
    }
  }

  /** Leader commit: advances only if the entry at `maxIndex` is from `term`. */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.term(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  /** True when a candidate's log is at least as up to date as ours (§5.4.1). */
  isUpToDate(lastIndex: number, term: number): boolean {
    const ourTerm = this.lastTerm();
    return term > ourTerm ||
      (term === ourTerm && lastIndex >= this.lastIndex());
  }

  hasNextCommittedEnts(): boolean {
    return this.committed > this.applied &&
      !this.unstableSnapshot;
  }

  /** Committed entries not yet handed out for applying. */
  nextCommittedEnts(maxBytes: number): Entry[] {
    if (!this.hasNextCommittedEnts()) return [];
    const lo = Math.max(this.applied + 1, this.firstIndex());
    return this.slice(lo, this.committed + 1, maxBytes);
  }

  appliedTo(i: number): void {
    if (i === 0) return;
    if (i > this.committed || i < this.applied) {
      throw new RaftError(
        "invariant",
        `applied ${i} outside [${this.applied}, ${this.committed}]`,
      );
    }
    this.applied = i;
  }

  /** Marks unstable entries up to (i, term) as persisted. */
  stableTo(i: number, term: number): void {
    const t = this.term(i);
    if (t !== term || i < this.unstableOffset) return;
    this.unstableEntries = this.unstableEntries.slice(
      i + 1 - this.unstableOffset,
    );
    this.unstableOffset = i + 1;
  }

  stableSnapTo(i: number): void {
    if (this.unstableSnapshot && this.unstableSnapshot.meta.index === i) {
      this.unstableSnapshot = undefined;
    }
  }

  /** Replaces the log with a snapshot from the leader (kept unstable). */
  restore(snap: Snapshot): void {
    this.committed = snap.meta.index;
    this.unstableSnapshot = snap;
    this.unstableOffset = snap.meta.index + 1;
    this.unstableEntries = [];
  }

  /** The snapshot to send a follower (storage's, or a pending one). */
  snapshot(): Snapshot {
    return this.unstableSnapshot ?? this.storage.snapshot();
  }
}
