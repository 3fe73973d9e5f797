import {
  type ConfChange,
  confChangeSchema,
  type ConfChangeV2,
  confChangeV2Schema,
  type ConfState,
  encodeConfChange,
  encodeConfChangeV2,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  NONE,
  type Snapshot,
} from "./messages.ts";
import type { ProgressState } from "./progress.ts";
import type { ClockVerdict } from "./clock_guard.ts";
import {
  type LeaseState,
  Raft,
  type RaftConfig,
  type RaftStats,
  type ReadState,
} from "./raft.ts";
import { RaftError } from "./raft_error.ts";
import type { RaftEvent, RaftRole } from "./raft_events.ts";

/**
 * What the node asks the application to do, in this order:
 * 1. persist `hardState`, `snapshot` and `entries` (fsync) — nothing in
 *    `messages` may leave before that, which is what makes an
 *    acknowledgement mean "durable";
 * 2. send `messages`;
 * 3. apply `snapshot` and then `committedEntries` to the state machine
 *    (off the critical path: it may lag, `apply` is idempotent by index);
 * 4. answer reads in `readStates` once applied ≥ their index;
 * 5. call `advance()`.
 */
export interface Ready {
  /** Role and leader, when they changed since the previous Ready. */
  softState?: { lead: NodeId; role: RaftRole };
  /** Term, vote and commit to persist, when they changed. */
  hardState?: HardState;
  /** Entries to append to durable storage (may replace a conflicting suffix). */
  entries: Entry[];
  /** A snapshot received from the leader: persist, then load into the state machine. */
  snapshot?: Snapshot;
  /** Committed entries to apply, in index order. */
  committedEntries: Entry[];
  /** Messages to send once the above is durable. */
  messages: Message[];
  /** Linearizable read points (ReadIndex / lease) now available. */
  readStates: ReadState[];
  /** Structured events since the previous Ready. */
  events: RaftEvent[];
  /** True when the hard state or entries must be fsynced before sending. */
  mustSync: boolean;
}

/** The leader's view of one peer, for status pages and membership policy. */
export interface PeerStatus {
  /** Highest index known to be replicated there. */
  match: number;
  /** Next index to send. */
  next: number;
  /** probe, replicate or snapshot. */
  state: ProgressState;
  /** True for a non-voting learner. */
  learner: boolean;
}

/** A node's externally visible state. */
export interface NodeStatus {
  /** Node id. */
  id: NodeId;
  /** Current term. */
  term: number;
  /** Vote in the current term. */
  vote: NodeId;
  /** Known leader. */
  lead: NodeId;
  /** Current role. */
  role: RaftRole;
  /** Commit index. */
  commit: number;
  /** Applied index. */
  applied: number;
  /** Last log index. */
  lastIndex: number;
  /** Membership. */
  confState: ConfState;
  /** Only on the leader. */
  progress?: Record<number, PeerStatus>;
  /** Counters (messages, bytes, echo bytes saved, drops). */
  stats: RaftStats;
}

/**
 * The application's handle on one raft node (etcd's RawNode). Single
 * threaded and synchronous: feed it `tick()` and received messages with
 * `step()`, make requests (`propose`, `readIndex`, ...), then drain work
 * with `ready()` and acknowledge it with `advance()`.
 */
export class RawNode {
  /** The underlying state machine (for status and tests). */
  readonly raft: Raft;
  #prevHard: HardState;
  #prevLead: NodeId;
  #prevRole: RaftRole;
  #pending:
    | {
      hardState?: HardState;
      lastEntry?: Entry;
      snapshotIndex?: number;
      committed: Entry[];
    }
    | undefined;

  /** Creates the node. @throws RaftError `invalid_config`. */
  constructor(config: RaftConfig) {
    this.raft = new Raft(config);
    // A fresh bootstrap's hard state still has to be persisted.
    this.#prevHard = config.storage.initialState().hardState;
    this.#prevLead = NONE;
    this.#prevRole = "follower";
  }

  /** Advances the logical clock by one tick (elections, heartbeats). */
  tick(): void {
    this.raft.tick();
  }

  /**
   * Delivers a message received from a peer. Messages for other nodes and
   * local-only kinds are ignored.
   */
  step(m: Message): void {
    if (m.to !== this.raft.id) return;
    if (
      m.term === 0 && m.type !== "prop" && m.type !== "readIndex" &&
      m.type !== "transferLeader"
    ) return;
    this.raft.step(m);
  }

  /**
   * Proposes application data. On a follower it is forwarded to the leader.
   * Acceptance does not mean commitment: watch committed entries.
   * @throws RaftError `proposal_dropped` (no leader, transfer, uncommitted bound).
   */
  propose(data: Uint8Array): void {
    this.proposeBatch([data]);
  }

  /** Proposes several payloads in one step (one append on the leader). */
  proposeBatch(datas: readonly Uint8Array[]): void {
    if (datas.length === 0) return;
    const id = this.raft.id;
    this.raft.step({
      type: "prop",
      from: id,
      to: id,
      term: 0,
      entries: datas.map((data) => ({
        term: 0,
        index: 0,
        type: "normal" as const,
        data,
      })),
    });
  }

  /**
   * Proposes a single-server membership change. Only one change may be
   * pending; a second one is turned into an empty entry by the leader.
   * @throws RaftError `proposal_dropped`, or `invalid_config` for a malformed change.
   */
  proposeConfChange(cc: ConfChange): void {
    const parsed = confChangeSchema.safeParse(cc);
    if (!parsed.success) {
      throw new RaftError(
        "invalid_config",
        `invalid membership change: ${parsed.error.issues[0]?.message}`,
      );
    }
    this.#proposeConfEntry(encodeConfChange(cc));
  }

  /**
   * Proposes a membership change in the style of etcd's ConfChangeV2:
   * several changes at once through a joint configuration (with
   * `transition: "auto"` the leader leaves it by itself once it is applied;
   * with "explicit", propose `{ changes: [] }` to leave), or a single change
   * directly. `context` travels with the change in the log (member
   * addresses, say) and comes back in the committed entry. One change may
   * be pending at a time; a joint configuration must be left before the next.
   * @throws RaftError `proposal_dropped`, or `invalid_config` for a malformed change.
   */
  proposeConfChangeV2(cc: ConfChangeV2): void {
    const parsed = confChangeV2Schema.safeParse(cc);
    if (!parsed.success) {
      throw new RaftError(
        "invalid_config",
        `invalid membership change: ${parsed.error.issues[0]?.message}`,
      );
    }
    this.#proposeConfEntry(encodeConfChangeV2(cc));
  }

  /** Proposes one encoded membership-change entry (V1 or V2). */
  #proposeConfEntry(data: Uint8Array): void {
    const id = this.raft.id;
    this.raft.step({
      type: "prop",
      from: id,
      to: id,
      term: 0,
      entries: [{ term: 0, index: 0, type: "conf", data }],
    });
  }

  /**
   * Requests a linearizable read point; a ReadState with the same `ctx`
   * appears in a later Ready (or never, if leadership is lost: retry).
   */
  readIndex(ctx: string): void {
    const id = this.raft.id;
    this.raft.step({ type: "readIndex", from: id, to: id, term: 0, ctx });
  }

  /** Asks the leader to hand leadership to `target` (TimeoutNow). */
  transferLeadership(target: NodeId): void {
    const id = this.raft.id;
    this.raft.step({
      type: "transferLeader",
      from: id,
      to: id,
      term: 0,
      target,
    });
  }

  /** Starts an election now (tests, and operators forcing a campaign). */
  campaign(): void {
    this.raft.step({
      type: "timeoutNow",
      from: this.raft.id,
      to: this.raft.id,
      term: this.raft.term,
    });
  }

  /** True when `ready()` has something to do. */
  hasReady(): boolean {
    if (this.#pending) return false;
    const r = this.raft;
    const log = r.log;
    if (r.needBcast || r.msgs.length > 0) return true;
    if (log.unstableEntries.length > 0 || log.unstableSnapshot) return true;
    if (log.hasNextCommittedEnts()) return true;
    if (r.readStates.length > 0 || r.events.length > 0) return true;
    if (r.lead !== this.#prevLead || r.role !== this.#prevRole) return true;
    const p = this.#prevHard;
    return r.term !== p.term || r.vote !== p.vote || log.committed !== p.commit;
  }

  /**
   * Collects the work to do. Call `advance()` when it is done, before the
   * next `ready()`.
   * @throws RaftError `invariant` when called twice without advance, or when
   * the commit index or term would go backwards.
   */
  ready(): Ready {
    if (this.#pending) {
      throw new RaftError("invariant", "ready() called before advance()");
    }
    const r = this.raft;
    r.flushBcast();
    const log = r.log;
    const hs = r.hardState();
    const p = this.#prevHard;
    const hardChanged = hs.term !== p.term || hs.vote !== p.vote ||
      hs.commit !== p.commit;
    if (hardChanged && (hs.term < p.term || hs.commit < p.commit)) {
      throw new RaftError(
        "invariant",
        `term/commit went backwards: ${JSON.stringify(p)} -> ${
          JSON.stringify(hs)
        }`,
      );
    }
    const entries = log.unstableEntries.slice();
    const snapshot = log.unstableSnapshot;
    const committedEntries = log.nextCommittedEnts(r.maxCommittedSizePerReady);
    const rd: Ready = {
      entries,
      committedEntries,
      messages: r.msgs,
      readStates: r.readStates,
      events: r.events,
      mustSync: hardChanged || entries.length > 0 || snapshot !== undefined,
    };
    r.msgs = [];
    r.readStates = [];
    r.events = [];
    if (hardChanged) rd.hardState = hs;
    if (snapshot) rd.snapshot = snapshot;
    if (r.lead !== this.#prevLead || r.role !== this.#prevRole) {
      rd.softState = { lead: r.lead, role: r.role };
      this.#prevLead = r.lead;
      this.#prevRole = r.role;
    }
    this.#pending = {
      hardState: rd.hardState,
      lastEntry: entries[entries.length - 1],
      snapshotIndex: snapshot?.meta.index,
      committed: committedEntries,
    };
    return rd;
  }

  /**
   * Tells the node the last Ready was persisted, sent and applied:
   * marks entries stable, records the applied index and applies committed
   * membership changes.
   */
  advance(): void {
    const p = this.#pending;
    if (!p) return;
    this.#pending = undefined;
    const r = this.raft;
    if (p.hardState) this.#prevHard = p.hardState;
    if (p.lastEntry) r.log.stableTo(p.lastEntry.index, p.lastEntry.term);
    if (p.snapshotIndex !== undefined) {
      r.log.stableSnapTo(p.snapshotIndex);
      if (p.snapshotIndex > r.log.applied) r.log.applied = p.snapshotIndex;
    }
    if (p.committed.length > 0) {
      for (const e of p.committed) {
        if (e.index <= r.log.applied) continue;
        if (e.type === "conf") r.applyConfEntry(e.data, e.index);
      }
      const last = p.committed[p.committed.length - 1]!.index;
      if (last > r.log.applied) r.log.appliedTo(last);
      r.reduceUncommittedSize(p.committed);
      r.maybeAutoLeave();
    }
    r.campaignIfSoleVoter();
  }

  /** The membership as of the applied index (store it with snapshots). */
  confState(): ConfState {
    return this.raft.confState();
  }

  /** True when the leader's read lease is currently valid. */
  leaseValid(): boolean {
    return this.raft.leaseValid();
  }

  /** Whether the lease holds, and why not. */
  leaseState(): LeaseState {
    return this.raft.leaseState();
  }

  /** The clock guard's verdict (undefined when the guard is off). */
  clockVerdict(): ClockVerdict | undefined {
    return this.raft.clockVerdict();
  }

  /** A snapshot of the node's state. */
  status(): NodeStatus {
    const r = this.raft;
    const s: NodeStatus = {
      id: r.id,
      term: r.term,
      vote: r.vote,
      lead: r.lead,
      role: r.role,
      commit: r.log.committed,
      applied: r.log.applied,
      lastIndex: r.log.lastIndex(),
      confState: r.confState(),
      stats: { ...r.stats },
    };
    if (r.role === "leader") {
      s.progress = {};
      for (const [id, pr] of r.prs) {
        s.progress[id] = {
          match: pr.match,
          next: pr.next,
          state: pr.state,
          learner: pr.isLearner,
        };
      }
    }
    return s;
  }
}
