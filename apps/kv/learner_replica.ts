/**
 * A learner's local copy of a key prefix: applies the member's
 * {@link Changes} and {@link SnapshotChunk}s, refusing any gap or
 * duplicate, and answers reads at the revision it stands at. Pure: no I/O.
 */
import type { Change, SnapshotEntry } from "./learner_messages.ts";
import { OrderedMap } from "./ordered_map.ts";

/** A key of the replica. */
export interface ReplicaEntry {
  key: string;
  value: Uint8Array;
  /** Revision of the key's last write. */
  revision: number;
}

/** A stream message that does not continue the replica (the connection must be dropped). */
export class LearnerStreamError extends Error {
  /** `gap`: changes start after the next revision; `duplicate`: before it; `malformed`: out of order or out of range. */
  readonly code: "gap" | "duplicate" | "malformed";
  /** @param code what is wrong. */
  constructor(code: "gap" | "duplicate" | "malformed", message: string) {
    super(message);
    this.name = "LearnerStreamError";
    this.code = code;
  }
}

/** What one applied message did, for observers. */
export interface ReplicaUpdate {
  /** First revision covered (for a snapshot: the revision it replaced the state at). */
  from: number;
  /** The replica's revision afterwards. */
  to: number;
  /** The changes applied (empty for progress and snapshots). */
  changes: readonly Change[];
  /** True when a snapshot replaced the state. */
  snapshot: boolean;
}

/** See the module comment. */
export class LearnerReplica {
  readonly prefix: string;
  #revision: number;
  #based: boolean;
  #keys = new OrderedMap<string, ReplicaEntry>();
  #pending: { revision: number; entries: SnapshotEntry[] } | undefined;

  /**
   * @param prefix the keys it holds.
   * @param from first revision wanted; undefined: start from a snapshot
   *   (a full copy of the prefix). With `from`, the replica holds only the
   *   changes from that revision on (the caller holds the state before it),
   *   unless the member sends a snapshot because `from` is compacted.
   */
  constructor(prefix: string, from?: number) {
    this.prefix = prefix;
    this.#based = from !== undefined;
    this.#revision = from === undefined ? 0 : Math.max(0, from - 1);
  }

  /** The revision the replica stands at: every change up to it is applied. */
  get revision(): number {
    return this.#revision;
  }

  /** True once it holds a state to read (a snapshot arrived, or it started `from` a revision). */
  get based(): boolean {
    return this.#based;
  }

  /** The `from` to subscribe with now: 0 (a snapshot) until based, else revision + 1. */
  get resumeFrom(): number {
    return this.#based ? this.#revision + 1 : 0;
  }

  /** Number of keys held. */
  get size(): number {
    return this.#keys.size;
  }

  /** A key's value at {@link revision}. */
  get(key: string): ReplicaEntry | undefined {
    return this.#keys.get(key);
  }

  /**
   * Keys starting with `prefix` (default: all), after `after`
   * (exclusive), in order, at most `limit`.
   */
  scan(prefix = "", after?: string, limit = Infinity): ReplicaEntry[] {
    const out: ReplicaEntry[] = [];
    const start = after !== undefined && after >= prefix ? after : prefix;
    for (const [k, e] of this.#keys.entries(start)) {
      if (!k.startsWith(prefix) || out.length >= limit) break;
      if (after !== undefined && k <= after) continue;
      out.push(e);
    }
    return out;
  }

  /** Forgets a snapshot half received (the connection dropped mid-way). */
  dropPartial(): void {
    this.#pending = undefined;
  }

  /**
   * Applies changes `from` … `to`.
   * @throws LearnerStreamError when `from` is not revision + 1, the
   *   replica has no state yet, or a change is out of order or range.
   */
  applyChanges(
    from: number,
    to: number,
    changes: readonly Change[],
  ): ReplicaUpdate {
    if (!this.#based || this.#pending) {
      throw new LearnerStreamError(
        "malformed",
        "changes before the snapshot was complete",
      );
    }
    if (from !== this.#revision + 1) {
      throw new LearnerStreamError(
        from > this.#revision + 1 ? "gap" : "duplicate",
        `changes from revision ${from}, but the replica stands at ${this.#revision}`,
      );
    }
    if (to < this.#revision) {
      throw new LearnerStreamError(
        "malformed",
        `changes end at ${to} < ${from - 1}`,
      );
    }
    let last = from;
    for (const c of changes) {
      if (
        c.revision < last || c.revision > to || !c.key.startsWith(this.prefix)
      ) {
        throw new LearnerStreamError(
          "malformed",
          `change of ${
            JSON.stringify(c.key.slice(0, 100))
          } at ${c.revision} is out of order or outside ${from}…${to} or the prefix`,
        );
      }
      last = c.revision;
    }
    for (const c of changes) {
      if (c.value === null) this.#keys.delete(c.key);
      else {
        this.#keys.set(c.key, {
          key: c.key,
          value: c.value,
          revision: c.revision,
        });
      }
    }
    this.#revision = to;
    return { from, to, changes, snapshot: false };
  }

  /**
   * Takes one chunk of a snapshot; the last one replaces the state.
   * @returns the update when the snapshot is complete, else undefined.
   * @throws LearnerStreamError when it would move the replica back or
   *   mixes revisions.
   */
  applySnapshotChunk(
    revision: number,
    entries: readonly SnapshotEntry[],
    last: boolean,
  ): ReplicaUpdate | undefined {
    if (this.#based && revision < this.#revision) {
      throw new LearnerStreamError(
        "duplicate",
        `a snapshot at ${revision}, but the replica stands at ${this.#revision}`,
      );
    }
    const pending = this.#pending ??= { revision, entries: [] };
    if (pending.revision !== revision) {
      throw new LearnerStreamError(
        "malformed",
        `a snapshot chunk at ${revision} inside one at ${pending.revision}`,
      );
    }
    for (const e of entries) {
      if (!e.key.startsWith(this.prefix) || e.revision > revision) {
        throw new LearnerStreamError(
          "malformed",
          `snapshot key ${
            JSON.stringify(e.key.slice(0, 100))
          } outside the prefix or revision`,
        );
      }
      pending.entries.push(e);
    }
    if (!last) return undefined;
    const keys = new OrderedMap<string, ReplicaEntry>();
    for (const e of pending.entries) keys.set(e.key, { ...e });
    const from = this.#revision;
    this.#keys = keys;
    this.#revision = revision;
    this.#based = true;
    this.#pending = undefined;
    return { from, to: revision, changes: [], snapshot: true };
  }
}
