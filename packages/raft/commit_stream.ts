import type { Entry, Snapshot } from "./messages.ts";
import { entrySize } from "./messages.ts";
import { isRaftError, RaftError } from "./raft_error.ts";
import type { Storage } from "./storage.ts";

/**
 * What a member sends a client learner: committed entries from `from`
 * (consecutive), or a snapshot when the entries it needs were compacted.
 */
export type StreamMessage =
  | { kind: "entries"; subscriber: string; entries: Entry[] }
  | { kind: "snapshot"; subscriber: string; snapshot: Snapshot };

interface Cursor {
  /** Next index to send. */
  next: number;
  /** Highest index the subscriber acknowledged. */
  acked: number;
  /** Payload bytes sent and not acknowledged. */
  inflight: { index: number; bytes: number }[];
}

/** Options of a {@link CommitStreamHub}. Sizes in payload bytes. */
export interface CommitStreamOptions {
  /** Max payload per message (at least one entry is sent). Default 256 KiB. */
  maxBatchBytes?: number;
  /** Max unacknowledged payload per subscriber. Default 4 MiB. */
  maxInflightBytes?: number;
}

/**
 * Client learners (seed): with it any member — leader or follower — can
 * serve subscribers the committed entry stream from its own log, so clients
 * spread over members and the leader does not fan out to every one (no
 * running node wires it up yet; tests and packages/sim use it). Pure: feed it
 * the commit index after each Ready, send what it returns, and pass
 * subscriber acknowledgements to `ack`. Subscribers resume from any index at
 * any member (they all hold the same committed log).
 */
export class CommitStreamHub {
  readonly #cursors = new Map<string, Cursor>();
  readonly #maxBatch: number;
  readonly #maxInflight: number;
  #committed = 0;

  /** Creates a hub over a member's log. @param storage the member's (persisted) log. */
  constructor(readonly storage: Storage, options: CommitStreamOptions = {}) {
    this.#maxBatch = options.maxBatchBytes ?? 256 * 1024;
    this.#maxInflight = options.maxInflightBytes ?? 4 * 1024 * 1024;
  }

  /** Number of subscribers. */
  get size(): number {
    return this.#cursors.size;
  }

  /**
   * Adds (or resumes) a subscriber that has applied everything before
   * `fromIndex`. @returns the messages to send now.
   */
  subscribe(id: string, fromIndex: number): StreamMessage[] {
    this.#cursors.set(id, {
      next: Math.max(1, fromIndex),
      acked: fromIndex - 1,
      inflight: [],
    });
    return this.#pump(id);
  }

  /** Removes a subscriber. */
  unsubscribe(id: string): void {
    this.#cursors.delete(id);
  }

  /** Records that `id` applied everything up to `index`. @returns messages to send. */
  ack(id: string, index: number): StreamMessage[] {
    const c = this.#cursors.get(id);
    if (!c) return [];
    if (index > c.acked) c.acked = index;
    while (c.inflight.length > 0 && c.inflight[0]!.index <= c.acked) {
      c.inflight.shift();
    }
    if (c.next <= c.acked) c.next = c.acked + 1;
    return this.#pump(id);
  }

  /** Resends from the last acknowledgement (after a lost message). */
  resend(id: string): StreamMessage[] {
    const c = this.#cursors.get(id);
    if (!c) return [];
    c.next = c.acked + 1;
    c.inflight = [];
    return this.#pump(id);
  }

  /** Tells the hub the member's commit index moved. @returns messages to send. */
  committed(index: number): StreamMessage[] {
    if (index <= this.#committed) return [];
    this.#committed = index;
    const out: StreamMessage[] = [];
    for (const id of this.#cursors.keys()) out.push(...this.#pump(id));
    return out;
  }

  #pump(id: string): StreamMessage[] {
    const c = this.#cursors.get(id)!;
    const out: StreamMessage[] = [];
    const commit = Math.min(this.#committed, this.storage.lastIndex());
    while (c.next <= commit) {
      let inflight = 0;
      for (const f of c.inflight) inflight += f.bytes;
      if (c.inflight.length > 0 && inflight >= this.#maxInflight) break;
      if (c.next < this.storage.firstIndex()) {
        const snapshot = this.storage.snapshot();
        out.push({ kind: "snapshot", subscriber: id, snapshot });
        c.next = snapshot.meta.index + 1;
        c.inflight.push({
          index: snapshot.meta.index,
          bytes: snapshot.data.length,
        });
        continue;
      }
      let entries: Entry[];
      try {
        entries = this.storage.entries(c.next, commit + 1, this.#maxBatch);
      } catch (e) {
        if (isRaftError(e, "compacted")) continue;
        throw e;
      }
      if (entries.length === 0) break;
      let bytes = 0;
      for (const e of entries) bytes += entrySize(e);
      out.push({ kind: "entries", subscriber: id, entries });
      c.next = entries[entries.length - 1]!.index + 1;
      c.inflight.push({ index: c.next - 1, bytes });
    }
    return out;
  }
}

/**
 * The client learner's side: applies the stream in order exactly once,
 * whatever member it came from, and says where to resume.
 */
export class CommitStreamSubscriber {
  /** Highest index applied. */
  applied = 0;

  /**
   * @param apply called for each new entry, in index order.
   * @param restore called with a snapshot that replaces the state.
   */
  /** Creates a subscriber that applies with `apply` and restores with `restore`. */
  constructor(
    readonly apply: (entry: Entry) => void,
    readonly restore: (snapshot: Snapshot) => void,
  ) {}

  /**
   * Handles one message; duplicates and stale messages are ignored.
   * @returns the index to acknowledge.
   * @throws RaftError `invariant` when the stream has a gap (resubscribe from `applied + 1`).
   */
  receive(m: StreamMessage): number {
    if (m.kind === "snapshot") {
      if (m.snapshot.meta.index > this.applied) {
        this.restore(m.snapshot);
        this.applied = m.snapshot.meta.index;
      }
      return this.applied;
    }
    for (const e of m.entries) {
      if (e.index <= this.applied) continue;
      if (e.index !== this.applied + 1) {
        throw new RaftError(
          "invariant",
          `stream gap: got ${e.index} after ${this.applied}`,
        );
      }
      this.apply(e);
      this.applied = e.index;
    }
    return this.applied;
  }
}
