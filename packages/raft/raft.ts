import {
  type AnyConfChange,
  type ConfChange,
  type ConfState,
  decodeAnyConfChange,
  encodeConfChange,
  encodeConfChangeV2,
  type Entry,
  entrySize,
  type HardState,
  type Message,
  type MessageOf,
  type NodeId,
  NONE,
  type Snapshot,
} from "./messages.ts";
import {
  ClockGuard,
  type ClockGuardOptions,
  type ClockVerdict,
} from "./clock_guard.ts";
import { Progress } from "./progress.ts";
import { RaftError } from "./raft_error.ts";
import type { RaftEvent, RaftRole } from "./raft_events.ts";
import { RaftLog } from "./raft_log.ts";
import type { Storage } from "./storage.ts";

/**
 * Configuration of one raft node. Elections and heartbeats count ticks; the
 * read lease is measured on the injected monotonic `clock` (by default the
 * tick count × `tickMs`, i.e. time that stands still between ticks).
 */
export interface RaftConfig {
  /** This node's id (not 0). */
  id: NodeId;
  /** The log and state persisted so far. */
  storage: Storage;
  /**
   * Initial voters, used only when the storage is empty: the node then
   * bootstraps by writing one "addNode" entry per peer at term 1 (as etcd
   * does), so nodes added later learn the membership from the log.
   */
  peers?: NodeId[];
  /** Ticks without hearing from a leader before campaigning (randomized up to 2x). */
  electionTick: number;
  /** Ticks between leader heartbeats (< electionTick). */
  heartbeatTick: number;
  /** Injected randomness in [0, 1): election timeouts and proposal ids. */
  random: () => number;
  /** Index already applied by the state machine (restart), default the snapshot's. */
  applied?: number;
  /** Max payload bytes per AppendEntries (default 1 MiB; at least one entry is sent). */
  maxSizePerMsg?: number;
  /** Max AppendEntries in flight per follower (default 256). */
  maxInflightMsgs?: number;
  /** Max payload bytes in flight per follower (default 0 = unbounded). */
  maxInflightBytes?: number;
  /** Max uncommitted payload bytes a leader accepts (default 0 = unbounded). */
  maxUncommittedEntriesSize?: number;
  /** Max bytes of committed entries per Ready (default 64 MiB). */
  maxCommittedSizePerReady?: number;
  /** Run a pre-vote before bumping the term (default true). */
  preVote?: boolean;
  /** Leader steps down without a quorum of recent contact; followers in lease ignore votes (default true). */
  checkQuorum?: boolean;
  /** "safe": ReadIndex confirms leadership with a heartbeat round; "lease": answer from the lease when valid. */
  readOnly?: "safe" | "lease";
  /**
   * Clock-drift bound in ticks: the lease lasts `electionTick - leaseDriftTicks`
   * ticks from the send time of the heartbeats a quorum acknowledged
   * (default 2). Must be < electionTick.
   */
  leaseDriftTicks?: number;
  /**
   * Monotonic clock port (ms in production: `performance.now()`; virtual
   * time in the simulator). Default: the tick count × `tickMs`. The lease,
   * the followers' vote refusal and the clock guard are measured on it.
   */
  clock?: () => number;
  /**
   * Wall clock port (ms since the epoch, `Date.now()`), for the clock
   * guard's local check and the wall offsets peers exchange. Default none.
   */
  wallClock?: () => number;
  /** Nominal clock time per tick (default 1: the tick is the unit). */
  tickMs?: number;
  /**
   * A gap longer than this between two ticks (clock time: a stopped
   * process, a long GC, a blocked event loop) voids the lease until
   * heartbeats sent after the gap are acknowledged by a quorum
   * (default max(2, leaseDriftTicks) × tickMs).
   */
  maxTickGap?: number;
  /**
   * Clock guard (see {@link ClockGuard}): lease reads are refused while the
   * local clocks disagree, and only peers whose clock rate was measured
   * within bounds count toward the lease quorum. Default off (every peer
   * counts); `ReplicatedNode` turns it on.
   */
  clockGuard?: ClockGuardOptions;
  /** Snapshot chunk size for InstallSnapshot, bytes (default 64 KiB). */
  snapshotChunkBytes?: number;
  /**
   * Deliberate bugs, for showing that the simulator catches them. Never
   * set these outside tests.
   */
  unsafe?: {
    /** Commit entries of earlier terms by counting replicas (Figure 8 bug). */
    commitPreviousTermEntries?: boolean;
    /** Grant votes without the log up-to-date check (§5.4.1). */
    voteWithoutLogCheck?: boolean;
    /**
     * In a joint configuration, commit on a majority of the outgoing (old)
     * voters alone, not of both configurations (§6 of the Raft paper).
     */
    jointCommitOutgoingOnly?: boolean;
  };
}

/** A linearizable read point: the state machine may answer `ctx` once applied ≥ index. */
export interface ReadState {
  /** Commit index at the time of the request. */
  index: number;
  /** The caller's request context, echoed. */
  ctx: string;
}

/** Counters for metrics and benchmarks. */
export interface RaftStats {
  /** Messages produced. */
  messages: number;
  /** Payload bytes of entries in produced AppendEntries. */
  appendBytes: number;
  /** Payload bytes left out thanks to the forwarded-proposal echo. */
  echoBytesSaved: number;
  /** Proposals dropped (no leader, transfer, uncommitted bound). */
  proposalsDropped: number;
  /** Gaps between ticks longer than `maxTickGap` (on a leader each voids the lease). */
  tickGaps: number;
}

/** Whether the lease holds now, and if not, why. */
export interface LeaseState {
  /** True when a lease read may be answered now. */
  valid: boolean;
  /** Why not (undefined when valid). */
  reason?: string;
  /** Clock time until which the lease holds (when valid). */
  until?: number;
}

interface PendingRead {
  index: number;
  ctx: string;
  from: NodeId;
  seq: number;
}

interface SnapshotReceive {
  index: number;
  term: number;
  /** The leader sending it, and its term: another sender restarts the transfer. */
  from: NodeId;
  leaderTerm: number;
  total: number;
  chunks: Uint8Array[];
  received: number;
}

const EMPTY = new Uint8Array(0);
const MAX_FORWARDED = 4096;
const SNAPSHOT_WINDOW_CHUNKS = 4;

/**
 * The raft state machine of one node. Pure: it reacts to `tick()` and
 * `step()` by changing memory state and queueing messages, never doing I/O.
 * Applications use {@link RawNode}, which packages the outputs as Readys.
 */
export class Raft {
  /** This node's id. */
  readonly id: NodeId;
  /** Current term. */
  term = 0;
  /** Whom this node voted for in `term` (NONE if nobody). */
  vote: NodeId = NONE;
  /** Known leader of `term` (NONE if unknown). */
  lead: NodeId = NONE;
  /** Current role. */
  role: RaftRole = "follower";
  /** The log (stable + unstable parts, commit and applied indexes). */
  readonly log: RaftLog;
  /** Leader's view of every member's replication progress. */
  readonly prs: Map<NodeId, Progress> = new Map();
  /** Voting members (the incoming voters in a joint configuration). */
  readonly voters: Set<NodeId> = new Set();
  /** Non-voting members. */
  readonly learners: Set<NodeId> = new Set();
  /** In a joint configuration: the voters of the configuration being left (else empty). */
  readonly votersOutgoing: Set<NodeId> = new Set();
  /** In a joint configuration: outgoing voters that become learners when it is left. */
  readonly learnersNext: Set<NodeId> = new Set();
  /** In a joint configuration: leave it automatically once it is applied. */
  autoLeave = false;
  /** Messages produced since the last Ready. */
  msgs: Message[] = [];
  /** Read states produced since the last Ready. */
  readStates: ReadState[] = [];
  /** Events produced since the last Ready. */
  events: RaftEvent[] = [];
  /** Counters since this node was created. */
  readonly stats: RaftStats = {
    messages: 0,
    appendBytes: 0,
    echoBytesSaved: 0,
    proposalsDropped: 0,
    tickGaps: 0,
  };
  /** Index of the last membership change entry not yet applied. */
  pendingConfIndex = 0;
  /** Target of a leadership transfer in progress (NONE if none). */
  leadTransferee: NodeId = NONE;
  /** Payload bytes appended by this leader and not yet applied. */
  uncommittedSize = 0;
  /** True when proposals were appended and followers still need them. */
  needBcast = false;
  /** Ticks since this node was created. */
  ticks = 0;

  readonly #votes = new Map<NodeId, boolean>();
  #electionElapsed = 0;
  #heartbeatElapsed = 0;
  #randomizedElectionTimeout = 0;
  readonly #electionTick: number;
  readonly #heartbeatTick: number;
  readonly #random: () => number;
  readonly #maxSizePerMsg: number;
  readonly #maxInflightMsgs: number;
  readonly #maxInflightBytes: number;
  readonly #maxUncommitted: number;
  /** Max bytes of committed entries handed out per Ready. */
  readonly maxCommittedSizePerReady: number;
  readonly #preVote: boolean;
  readonly #checkQuorum: boolean;
  readonly #readOnly: "safe" | "lease";
  /** Lease length, clock time. */
  readonly #leaseTime: number;
  /** Election timeout (the base), clock time. */
  readonly #electionTime: number;
  readonly #tickTime: number;
  readonly #maxTickGap: number;
  readonly #clock: () => number;
  readonly #wall: (() => number) | undefined;
  readonly #guard: ClockGuard | undefined;
  #lastTickAt: number;
  /** Only heartbeats sent at or after this time extend the lease (a gap voids it). */
  #leaseFloor = -Infinity;
  #gapNote: string | undefined;
  /** When this node last heard from the leader of its term (clock time). */
  #leaderContactAt = -Infinity;
  readonly #startedAt: number;
  readonly #chunkBytes: number;
  readonly #unsafe: NonNullable<RaftConfig["unsafe"]>;
  #heartbeatSeq = 0;
  #pendingReads: PendingRead[] = [];
  /** Reads that arrived before this leader committed an entry of its term. */
  #readsBeforeCommit: MessageOf<"readIndex">[] = [];
  /** Leader: entries proposed by a follower, to echo back without payload. */
  readonly #echoOrigin = new Map<number, { from: NodeId; id: number }>();
  /** Follower: payloads of proposals it forwarded, by proposal id. */
  readonly #forwarded = new Map<number, Entry>();
  #nextProposalId: number;
  #snapRecv: SnapshotReceive | undefined;
  #timeoutNowSent = false;

  /**
   * Creates the node from its storage (or bootstraps it from `peers`).
   * @throws RaftError `invalid_config` on inconsistent timing or ids.
   */
  constructor(config: RaftConfig) {
    if (config.id === NONE) {
      throw new RaftError("invalid_config", "node id 0 is reserved");
    }
    if (
      config.heartbeatTick <= 0 || config.electionTick <= config.heartbeatTick
    ) {
      throw new RaftError(
        "invalid_config",
        "need 0 < heartbeatTick < electionTick",
      );
    }
    this.id = config.id;
    this.#electionTick = config.electionTick;
    this.#heartbeatTick = config.heartbeatTick;
    this.#random = config.random;
    this.#maxSizePerMsg = config.maxSizePerMsg ?? 1024 * 1024;
    this.#maxInflightMsgs = config.maxInflightMsgs ?? 256;
    this.#maxInflightBytes = config.maxInflightBytes ?? 0;
    this.#maxUncommitted = config.maxUncommittedEntriesSize ?? 0;
    this.maxCommittedSizePerReady = config.maxCommittedSizePerReady ??
      64 * 1024 * 1024;
    this.#preVote = config.preVote ?? true;
    this.#checkQuorum = config.checkQuorum ?? true;
    this.#readOnly = config.readOnly ?? "safe";
    const drift = config.leaseDriftTicks ?? 2;
    if (drift < 0 || drift >= config.electionTick) {
      throw new RaftError(
        "invalid_config",
        "need 0 <= leaseDriftTicks < electionTick",
      );
    }
    this.#tickTime = config.tickMs ?? 1;
    if (!(this.#tickTime > 0)) {
      throw new RaftError("invalid_config", "need tickMs > 0");
    }
    this.#leaseTime = (config.electionTick - drift) * this.#tickTime;
    this.#electionTime = config.electionTick * this.#tickTime;
    this.#maxTickGap = config.maxTickGap ?? Math.max(2, drift) * this.#tickTime;
    this.#clock = config.clock ?? (() => this.ticks * this.#tickTime);
    this.#wall = config.wallClock;
    this.#guard = config.clockGuard
      ? new ClockGuard(config.clockGuard)
      : undefined;
    this.#startedAt = this.#clock();
    this.#lastTickAt = this.#startedAt;
    this.#chunkBytes = config.snapshotChunkBytes ?? 64 * 1024;
    this.#unsafe = config.unsafe ?? {};
    // Proposal ids start at a random base so ids of a restarted node do not
    // collide with ids a leader still remembers from its previous life.
    this.#nextProposalId = Math.floor(config.random() * 2 ** 31) * 2 ** 20 + 1;

    const storage = config.storage;
    this.log = new RaftLog(storage, config.applied);
    const { hardState, confState } = storage.initialState();
    this.#setConf(confState);
    const fresh = storage.lastIndex() === 0 && hardState.term === 0 &&
      confState.voters.length === 0;
    if (fresh && config.peers && config.peers.length > 0) {
      this.#bootstrap(config.peers);
    } else {
      this.#loadState(hardState);
      this.#replayAppliedConf();
    }
    this.becomeFollower(this.term, NONE);
    this.campaignIfSoleVoter();
  }

  /**
   * Campaigns at once when this node is its configuration's only voter and
   * knows no leader: no one else votes, so an election timeout would only
   * delay it (etcd fast-forwards a single member's election ticks on start
   * for the same reason). Called on start and after each apply (a fresh
   * bootstrap's membership entries must be applied first). A node that
   * follows a leader, e.g. one that has just removed itself, waits out the
   * timeout as before, so it never campaigns inside that leader's lease.
   * Unlike a vote for another node, this skips the boot wait (a restarted
   * node may have acknowledged a lease it no longer remembers): a sole
   * voter's configuration was committed by the old leader, which applies it
   * and steps down within one Ready, long before this node could restart.
   */
  campaignIfSoleVoter(): void {
    if (this.role !== "leader" && this.lead === NONE && this.#soleVoter()) {
      this.#hup(false);
    }
  }

  /**
   * Membership changes between the snapshot and the applied index were
   * applied before the restart and will not be handed out again: rebuild
   * the membership from them now.
   */
  #replayAppliedConf(): void {
    const lo = this.log.firstIndex();
    const hi = Math.min(this.log.applied, this.log.committed);
    if (hi < lo) return;
    for (const e of this.log.slice(lo, hi + 1, Infinity)) {
      if (e.type === "conf") this.applyConfEntry(e.data, e.index);
    }
  }

  #bootstrap(peers: NodeId[]): void {
    const ents: Entry[] = peers.map((p, i) => ({
      term: 1,
      index: i + 1,
      type: "conf",
      data: encodeConfChange({ type: "addNode", nodeId: p }),
    }));
    this.log.append(ents);
    this.log.committed = ents.length;
    this.term = 1;
    for (const p of peers) this.applyConfChange({ type: "addNode", nodeId: p });
  }

  #loadState(hs: HardState): void {
    if (hs.commit > this.log.lastIndex()) {
      throw new RaftError(
        "invariant",
        `persisted commit ${hs.commit} beyond last index ${this.log.lastIndex()}`,
      );
    }
    this.log.committed = Math.max(this.log.committed, hs.commit);
    this.term = hs.term;
    this.vote = hs.vote;
  }

  #setConf(cs: ConfState): void {
    this.voters.clear();
    this.learners.clear();
    this.votersOutgoing.clear();
    this.learnersNext.clear();
    this.prs.clear();
    const next = this.log.lastIndex() + 1;
    for (const v of [...cs.voters, ...(cs.votersOutgoing ?? [])]) {
      this.prs.set(v, this.#newProgress(next, false));
    }
    for (const v of cs.voters) this.voters.add(v);
    for (const v of cs.votersOutgoing ?? []) this.votersOutgoing.add(v);
    for (const l of cs.learnersNext ?? []) this.learnersNext.add(l);
    this.autoLeave = this.votersOutgoing.size > 0 && (cs.autoLeave ?? false);
    for (const l of cs.learners) {
      this.learners.add(l);
      this.prs.set(l, this.#newProgress(next, true));
    }
  }

  #newProgress(next: number, learner: boolean): Progress {
    const p = new Progress(
      next,
      learner,
      this.#maxInflightMsgs,
      this.#maxInflightBytes,
    );
    p.recentActive = true;
    return p;
  }

  /** The persistent state (term, vote, commit). */
  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  /** The current membership. */
  confState(): ConfState {
    const sorted = (s: Set<NodeId>) => [...s].sort((a, b) => a - b);
    const cs: ConfState = {
      voters: sorted(this.voters),
      learners: sorted(this.learners),
    };
    if (this.joint()) {
      cs.votersOutgoing = sorted(this.votersOutgoing);
      cs.learnersNext = sorted(this.learnersNext);
      cs.autoLeave = this.autoLeave;
    }
    return cs;
  }

  /** True while in a joint configuration (decisions need both majorities). */
  joint(): boolean {
    return this.votersOutgoing.size > 0;
  }

  /** Every voter of the current and (when joint) the outgoing configuration. */
  #allVoters(): Set<NodeId> {
    if (!this.joint()) return this.voters;
    return new Set([...this.voters, ...this.votersOutgoing]);
  }

  /** True when this is the only voter (no one else to ask). */
  #soleVoter(): boolean {
    return !this.joint() && this.voters.size === 1 && this.voters.has(this.id);
  }

  /** True when this node may campaign (it is a voter, incoming or outgoing). */
  promotable(): boolean {
    return this.voters.has(this.id) || this.votersOutgoing.has(this.id);
  }

  /**
   * The largest value a majority of `set` has reached (+Infinity for an
   * empty set, which agrees to anything, as in etcd).
   */
  static #majority(
    set: Set<NodeId>,
    get: (id: NodeId) => number,
  ): number {
    if (set.size === 0) return Infinity;
    const vals: number[] = [];
    for (const v of set) vals.push(get(v));
    vals.sort((a, b) => b - a);
    return vals[set.size >> 1]!;
  }

  /** How many voters `voters` would have once `changes` are applied. */
  static #votersAfter(
    voters: Set<NodeId>,
    changes: readonly ConfChange[],
  ): number {
    const after = new Set(voters);
    for (const cc of changes) {
      if (cc.type === "addNode") after.add(cc.nodeId);
      else after.delete(cc.nodeId);
    }
    return after.size;
  }

  /** The value reached by a majority of the incoming voters and (when joint) of the outgoing ones. */
  #jointMajority(get: (id: NodeId) => number): number {
    return Math.min(
      Raft.#majority(this.voters, get),
      Raft.#majority(this.votersOutgoing, get),
    );
  }

  #event(e: RaftEvent): void {
    this.events.push(e);
  }

  #send(m: Message): void {
    this.stats.messages++;
    this.msgs.push(m);
  }

  // ---- role transitions ----

  #reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.#electionElapsed = 0;
    this.#heartbeatElapsed = 0;
    this.#randomizedElectionTimeout = this.#electionTick +
      Math.floor(this.#random() * this.#electionTick);
    this.#abortTransfer();
    this.#votes.clear();
    const next = this.log.lastIndex() + 1;
    for (const [id, pr] of this.prs) {
      const fresh = this.#newProgress(next, pr.isLearner);
      if (id === this.id) fresh.match = this.log.lastIndex();
      this.prs.set(id, fresh);
    }
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.#pendingReads = [];
    this.#readsBeforeCommit = [];
    this.#echoOrigin.clear();
    this.#timeoutNowSent = false;
    this.needBcast = false;
  }

  /** Becomes a follower of `lead` (or of nobody) in `term`. */
  becomeFollower(term: number, lead: NodeId): void {
    this.#reset(term);
    this.lead = lead;
    this.role = "follower";
    this.#event({ kind: "role", node: this.id, term, role: "follower", lead });
  }

  #becomeCandidate(): void {
    if (this.role === "leader") {
      throw new RaftError("invariant", "leader cannot become candidate");
    }
    this.#reset(this.term + 1);
    this.vote = this.id;
    this.role = "candidate";
    this.#event({
      kind: "role",
      node: this.id,
      term: this.term,
      role: "candidate",
      lead: NONE,
    });
  }

  #becomePreCandidate(): void {
    if (this.role === "leader") {
      throw new RaftError("invariant", "leader cannot become pre-candidate");
    }
    // Pre-vote changes neither term nor vote: a partitioned node cannot
    // disrupt the cluster by inflating the term.
    this.#votes.clear();
    this.lead = NONE;
    this.role = "preCandidate";
    this.#event({
      kind: "role",
      node: this.id,
      term: this.term,
      role: "preCandidate",
      lead: NONE,
    });
  }

  #becomeLeader(): void {
    if (this.role === "follower") {
      throw new RaftError("invariant", "follower cannot become leader");
    }
    this.#reset(this.term);
    this.lead = this.id;
    this.role = "leader";
    const self = this.prs.get(this.id)!;
    self.becomeReplicate();
    // Peer clocks are measured afresh in every term this node leads.
    this.#guard?.resetPeers();
    // Conservatively treat any entry of the log as a pending change.
    this.pendingConfIndex = this.log.lastIndex();
    this.#event({
      kind: "role",
      node: this.id,
      term: this.term,
      role: "leader",
      lead: this.id,
    });
    // The empty entry of the new term lets earlier entries commit (§5.4.2).
    this.#appendEntries([{ term: 0, index: 0, type: "normal", data: EMPTY }]);
    this.#bcastAppend();
  }

  #campaign(kind: "pre" | "election" | "transfer"): void {
    if (!this.promotable()) return;
    let term: number;
    let type: "vote" | "preVote";
    if (kind === "pre") {
      this.#becomePreCandidate();
      type = "preVote";
      term = this.term + 1;
    } else {
      this.#becomeCandidate();
      type = "vote";
      term = this.term;
    }
    if (this.#poll(this.id, true) === "won") {
      if (kind === "pre") this.#campaign("election");
      else this.#becomeLeader();
      return;
    }
    const index = this.log.lastIndex();
    const logTerm = this.log.lastTerm();
    for (const v of this.#allVoters()) {
      if (v === this.id) continue;
      this.#send({
        type,
        from: this.id,
        to: v,
        term,
        index,
        logTerm,
        transfer: kind === "transfer" ? true : undefined,
      });
    }
  }

  #poll(from: NodeId, granted: boolean): "won" | "lost" | "pending" {
    if (!this.#votes.has(from)) this.#votes.set(from, granted);
    const tally = (set: Set<NodeId>): "won" | "lost" | "pending" => {
      if (set.size === 0) return "won";
      let yes = 0;
      let no = 0;
      for (const v of set) {
        const g = this.#votes.get(v);
        if (g === true) yes++;
        else if (g === false) no++;
      }
      const q = (set.size >> 1) + 1;
      if (yes >= q) return "won";
      if (no > set.size - q) return "lost";
      return "pending";
    };
    const a = tally(this.voters);
    const b = tally(this.votersOutgoing);
    if (a === "lost" || b === "lost") return "lost";
    if (a === "won" && b === "won") return "won";
    return "pending";
  }

  // ---- ticks ----

  /** Advances the node's clock by one tick. */
  tick(): void {
    this.ticks++;
    const now = this.#clock();
    this.#observeClocks(now);
    this.#lastTickAt = now;
    if (this.role === "leader") this.#tickHeartbeat();
    else this.#tickElection();
  }

  #tickElection(): void {
    this.#electionElapsed++;
    if (
      this.promotable() &&
      this.#electionElapsed >= this.#randomizedElectionTimeout &&
      // Ticks may run ahead of time (a burst of catch-up ticks): never
      // campaign while the leader's lease may still hold by the clock.
      !this.#inLeaderLease(this.#clock())
    ) {
      this.#electionElapsed = 0;
      this.#hup(false);
    }
  }

  #tickHeartbeat(): void {
    this.#heartbeatElapsed++;
    this.#electionElapsed++;
    if (this.#electionElapsed >= this.#electionTick) {
      this.#electionElapsed = 0;
      if (this.#checkQuorum && !this.#quorumActive()) {
        this.#event({
          kind: "step_down",
          node: this.id,
          term: this.term,
          reason: "check_quorum",
        });
        this.becomeFollower(this.term, NONE);
        return;
      }
      if (this.leadTransferee !== NONE) this.#abortTransfer();
    }
    if (this.#heartbeatElapsed >= this.#heartbeatTick) {
      this.#heartbeatElapsed = 0;
      this.#bcastHeartbeat();
    }
  }

  #quorumActive(): boolean {
    const active = this.#jointMajority((v) =>
      v === this.id || this.prs.get(v)?.recentActive ? 1 : 0
    );
    for (const v of this.#allVoters()) {
      const pr = this.prs.get(v);
      if (pr && v !== this.id) pr.recentActive = false;
    }
    return active >= 1;
  }

  #hup(transfer: boolean): void {
    if (this.role === "leader") return;
    if (!this.promotable()) return;
    // A node with unapplied membership changes must not campaign: it might
    // not know the configuration it would lead.
    if (this.#hasUnappliedConf()) return;
    if (transfer) this.#campaign("transfer");
    else this.#campaign(this.#preVote ? "pre" : "election");
  }

  #hasUnappliedConf(): boolean {
    if (this.log.applied >= this.log.committed) return false;
    let ents: Entry[];
    try {
      ents = this.log.slice(
        this.log.applied + 1,
        this.log.committed + 1,
        Infinity,
      );
    } catch (e) {
      // Below a pending snapshot: its membership is already in force.
      if (e instanceof RaftError && e.code === "compacted") return false;
      throw e;
    }
    return ents.some((e) => e.type === "conf");
  }

  // ---- step ----

  /**
   * Feeds one message (from a peer, or a local request with term 0).
   * @throws RaftError `proposal_dropped` for a local proposal that cannot be accepted now.
   */
  step(m: Message): void {
    if (m.term === 0) {
      // local message: handled below
    } else if (m.term > this.term) {
      if (m.type === "vote" || m.type === "preVote") {
        const now = this.#clock();
        const inLease = this.#checkQuorum && this.lead !== NONE &&
          (this.#electionElapsed < this.#electionTick ||
            this.#inLeaderLease(now));
        const booting = this.#checkQuorum &&
          (this.ticks < this.#electionTick ||
            now - this.#startedAt < this.#electionTime);
        if (!m.transfer && (inLease || booting)) {
          this.#event({
            kind: "vote",
            node: this.id,
            term: this.term,
            candidate: m.from,
            pre: m.type === "preVote",
            granted: false,
            reason: "in leader lease",
          });
          return;
        }
      }
      if (m.type === "preVote") {
        // Never change term on a pre-vote.
      } else if (m.type === "preVoteResp" && !m.reject) {
        // A granted pre-vote for our future term; the term moves when we win.
      } else if (
        m.type === "app" || m.type === "heartbeat" || m.type === "snap"
      ) {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if (
        (this.#checkQuorum || this.#preVote) &&
        (m.type === "heartbeat" || m.type === "app")
      ) {
        // Tell a stale leader about the newer term so it steps down.
        this.#send({
          type: "appResp",
          from: this.id,
          to: m.from,
          term: this.term,
          index: 0,
          reject: false,
          rejectHint: 0,
          logTerm: 0,
        });
      } else if (m.type === "preVote") {
        this.#send({
          type: "preVoteResp",
          from: this.id,
          to: m.from,
          term: this.term,
          reject: true,
        });
      }
      return;
    }

    if (m.type === "vote" || m.type === "preVote") {
      this.#handleVote(m);
      return;
    }
    switch (this.role) {
      case "leader":
        this.#stepLeader(m);
        break;
      case "candidate":
      case "preCandidate":
        this.#stepCandidate(m);
        break;
      case "follower":
        this.#stepFollower(m);
        break;
    }
  }

  #handleVote(m: MessageOf<"vote"> | MessageOf<"preVote">): void {
    const pre = m.type === "preVote";
    const canVote = this.vote === m.from ||
      (this.vote === NONE && this.lead === NONE) ||
      (pre && m.term > this.term);
    const upToDate = this.#unsafe.voteWithoutLogCheck ||
      this.log.isUpToDate(m.index, m.logTerm);
    const granted = canVote && upToDate && m.from !== this.id;
    this.#event({
      kind: "vote",
      node: this.id,
      term: this.term,
      candidate: m.from,
      pre,
      granted,
      reason: !canVote
        ? "already voted or has leader"
        : upToDate
        ? "log up to date"
        : "log behind",
    });
    if (granted) {
      this.#send({
        type: pre ? "preVoteResp" : "voteResp",
        from: this.id,
        to: m.from,
        term: m.term,
        reject: false,
      });
      if (!pre) {
        this.#electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.#send({
        type: pre ? "preVoteResp" : "voteResp",
        from: this.id,
        to: m.from,
        term: this.term,
        reject: true,
      });
    }
  }

  #stepLeader(m: Message): void {
    switch (m.type) {
      case "prop":
        this.#leaderPropose(m);
        return;
      case "readIndex":
        this.#leaderReadIndex(m);
        return;
      case "transferLeader":
        this.#leaderTransfer(m.target);
        return;
    }
    const pr = this.prs.get(m.from);
    if (!pr) return;
    switch (m.type) {
      case "appResp":
        this.#handleAppResp(m, pr);
        break;
      case "heartbeatResp":
        this.#handleHeartbeatResp(m, pr);
        break;
      case "snapResp":
        this.#handleSnapResp(m, pr);
        break;
    }
  }

  #stepCandidate(m: Message): void {
    switch (m.type) {
      case "prop":
        this.#drop(m.from);
        return;
      case "app":
        this.becomeFollower(m.term, m.from);
        this.#heardFromLeader(m.from);
        this.#handleAppend(m);
        return;
      case "heartbeat":
        this.becomeFollower(m.term, m.from);
        this.#heardFromLeader(m.from);
        this.#handleHeartbeat(m);
        return;
      case "snap":
        this.becomeFollower(m.term, m.from);
        this.#heardFromLeader(m.from);
        this.#handleSnap(m);
        return;
      case "voteResp":
      case "preVoteResp": {
        const mine = this.role === "preCandidate" ? "preVoteResp" : "voteResp";
        if (m.type !== mine) return;
        const r = this.#poll(m.from, !m.reject);
        if (r === "won") {
          if (this.role === "preCandidate") this.#campaign("election");
          else this.#becomeLeader();
        } else if (r === "lost") {
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
    }
  }

  #stepFollower(m: Message): void {
    switch (m.type) {
      case "prop":
        this.#followerPropose(m);
        return;
      case "app":
        this.#heardFromLeader(m.from);
        this.#handleAppend(m);
        return;
      case "heartbeat":
        this.#heardFromLeader(m.from);
        this.#handleHeartbeat(m);
        return;
      case "snap":
        this.#heardFromLeader(m.from);
        this.#handleSnap(m);
        return;
      case "transferLeader":
        // Forward only our own requests, so a request cannot circulate.
        if (this.lead !== NONE && m.from === this.id) {
          this.#send({ ...m, to: this.lead, term: 0 });
        }
        return;
      case "timeoutNow":
        this.#event({
          kind: "transfer",
          node: this.id,
          term: this.term,
          target: this.id,
          phase: "timeout_now",
        });
        this.#hup(true);
        return;
      case "readIndex":
        if (this.lead === NONE || m.from !== this.id) return;
        this.#send({ ...m, to: this.lead, term: 0 });
        return;
      case "readIndexResp":
        this.readStates.push({ index: m.index, ctx: m.ctx });
        return;
    }
  }

  #heardFromLeader(from: NodeId): void {
    this.#electionElapsed = 0;
    this.lead = from;
    this.#leaderContactAt = this.#clock();
  }

  /**
   * True while a leader this node heard from may still hold its lease: less
   * than an election timeout (by this node's clock) since the contact.
   */
  #inLeaderLease(now: number): boolean {
    return this.lead !== NONE &&
      now - this.#leaderContactAt < this.#electionTime;
  }

  #drop(from: NodeId): void {
    this.stats.proposalsDropped++;
    if (from === this.id || from === NONE) {
      throw new RaftError("proposal_dropped", "proposal dropped");
    }
  }

  // ---- proposals ----

  #followerPropose(m: MessageOf<"prop">): void {
    if (this.lead === NONE || m.from !== this.id) {
      this.#drop(m.from);
      return;
    }
    const ids: number[] = [];
    for (const e of m.entries) {
      const id = this.#nextProposalId++;
      ids.push(id);
      this.#forwarded.set(id, e);
    }
    while (this.#forwarded.size > MAX_FORWARDED) {
      this.#forwarded.delete(this.#forwarded.keys().next().value!);
    }
    this.#send({
      type: "prop",
      from: this.id,
      to: this.lead,
      term: 0,
      entries: m.entries,
      proposalIds: ids,
    });
  }

  #leaderPropose(m: MessageOf<"prop">): void {
    if (m.entries.length === 0) {
      throw new RaftError("invariant", "empty proposal");
    }
    if (!this.prs.has(this.id) || this.leadTransferee !== NONE) {
      this.#drop(m.from);
      return;
    }
    let ents = m.entries;
    for (let i = 0; i < ents.length; i++) {
      if (ents[i]!.type !== "conf") continue;
      const any = decodeAnyConfChange(ents[i]!.data);
      const changes = any?.v === 1 ? [any.cc] : any?.cc.changes ?? [];
      const leave = any?.v === 2 && changes.length === 0;
      const refuse = any === undefined ||
        this.pendingConfIndex > this.log.applied ||
        // A joint configuration must be left before the next change, and
        // only a joint configuration can be left.
        (this.joint() !== leave) ||
        // A configuration without voters can never elect or commit again.
        (!leave && Raft.#votersAfter(this.voters, changes) === 0);
      if (refuse) {
        if (ents === m.entries) ents = [...ents];
        ents[i] = { term: 0, index: 0, type: "normal", data: EMPTY };
      } else {
        this.pendingConfIndex = this.log.lastIndex() + i + 1;
      }
    }
    const first = this.log.lastIndex() + 1;
    if (!this.#appendEntries(ents)) {
      this.#drop(m.from);
      return;
    }
    if (m.proposalIds && m.from !== this.id) {
      for (let i = 0; i < m.proposalIds.length; i++) {
        this.#echoOrigin.set(first + i, {
          from: m.from,
          id: m.proposalIds[i]!,
        });
      }
    }
    // Batching: followers get everything appended since the last Ready in
    // one AppendEntries, sent when the caller asks for the next Ready.
    this.needBcast = true;
  }

  #appendEntries(ents: readonly Entry[]): boolean {
    let size = 0;
    for (const e of ents) size += entrySize(e);
    if (
      this.#maxUncommitted > 0 && size > 0 && this.uncommittedSize > 0 &&
      this.uncommittedSize + size > this.#maxUncommitted
    ) return false;
    this.uncommittedSize += size;
    let li = this.log.lastIndex();
    const out: Entry[] = new Array(ents.length);
    for (let i = 0; i < ents.length; i++) {
      const e = ents[i]!;
      out[i] = { term: this.term, index: ++li, type: e.type, data: e.data };
    }
    this.log.append(out);
    this.prs.get(this.id)!.maybeUpdate(li);
    this.#maybeCommit();
    return true;
  }

  /** Lowers the uncommitted-bytes count by the payload of applied entries. */
  reduceUncommittedSize(ents: readonly Entry[]): void {
    if (this.role !== "leader") return;
    let size = 0;
    for (const e of ents) size += entrySize(e);
    this.uncommittedSize = Math.max(0, this.uncommittedSize - size);
  }

  /** Sends appends held back for batching. */
  flushBcast(): void {
    if (this.needBcast) {
      this.needBcast = false;
      this.#bcastAppend();
    }
  }

  // ---- replication (leader) ----

  #committedMatch(): number {
    const match = (v: NodeId) => this.prs.get(v)?.match ?? 0;
    const m = this.#unsafe.jointCommitOutgoingOnly && this.joint()
      ? Raft.#majority(this.votersOutgoing, match)
      : this.#jointMajority(match);
    return m === Infinity ? 0 : m;
  }

  #maybeCommit(): boolean {
    const mci = this.#committedMatch();
    const before = this.log.committed;
    let changed: boolean;
    if (this.#unsafe.commitPreviousTermEntries) {
      changed = mci > before && mci <= this.log.lastIndex();
      if (changed) this.log.commitTo(mci);
    } else {
      changed = this.log.maybeCommit(mci, this.term);
    }
    if (changed) {
      for (const idx of this.#echoOrigin.keys()) {
        if (idx > this.log.committed) break;
        this.#echoOrigin.delete(idx);
      }
      if (
        this.#readsBeforeCommit.length > 0 && this.#committedInTerm()
      ) {
        const reads = this.#readsBeforeCommit;
        this.#readsBeforeCommit = [];
        for (const r of reads) this.#leaderReadIndex(r);
      }
    }
    return changed;
  }

  #committedInTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  #bcastAppend(): void {
    for (const id of this.prs.keys()) {
      if (id !== this.id) this.#sendAppend(id, true);
    }
  }

  /** Sends entries (or a snapshot) to `to`; false when nothing was sent. */
  #sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.prs.get(to);
    if (!pr || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    let ents: Entry[] | undefined;
    if (prevTerm !== undefined) {
      try {
        ents = this.log.slice(
          pr.next,
          this.log.lastIndex() + 1,
          this.#maxSizePerMsg,
        );
      } catch (e) {
        if (!(e instanceof RaftError && e.code === "compacted")) throw e;
      }
    }
    if (prevTerm === undefined || ents === undefined) {
      return this.#startSnapshot(to, pr);
    }
    if (ents.length === 0 && !sendIfEmpty) return false;
    let bytes = 0;
    for (const e of ents) bytes += entrySize(e);
    const sent = this.#echoOrigin.size > 0
      ? this.#withEcho(to, pr, ents)
      : ents;
    if (sent !== ents) {
      let saved = 0;
      for (let i = 0; i < ents.length; i++) {
        saved += entrySize(ents[i]!) - entrySize(sent[i]!);
      }
      this.stats.echoBytesSaved += saved;
      bytes -= saved;
    }
    this.stats.appendBytes += bytes;
    this.#send({
      type: "app",
      from: this.id,
      to,
      term: this.term,
      index: prevIndex,
      logTerm: prevTerm,
      entries: sent,
      commit: this.log.committed,
    });
    if (pr.state === "replicate") {
      if (ents.length > 0) {
        const last = ents[ents.length - 1]!.index;
        pr.optimisticUpdate(last);
        pr.inflights.add(last, bytes);
      }
    } else {
      pr.probeSent = true;
    }
    return true;
  }

  /** Replaces payloads the follower itself proposed with (index, term, id) stubs. */
  #withEcho(to: NodeId, pr: Progress, ents: Entry[]): Entry[] {
    let out: Entry[] | undefined;
    for (let i = 0; i < ents.length; i++) {
      const e = ents[i]!;
      if (e.index <= pr.noEchoUpTo || e.data.length === 0) continue;
      const origin = this.#echoOrigin.get(e.index);
      if (!origin || origin.from !== to) continue;
      out ??= [...ents];
      out[i] = {
        term: e.term,
        index: e.index,
        type: e.type,
        data: EMPTY,
        echo: origin.id,
      };
    }
    return out ?? ents;
  }

  #startSnapshot(to: NodeId, pr: Progress): boolean {
    if (!pr.recentActive) return false;
    let snap: Snapshot;
    try {
      snap = this.log.snapshot();
    } catch (e) {
      if (e instanceof RaftError && e.code === "unavailable") return false;
      throw e;
    }
    if (snap.meta.index === 0) {
      throw new RaftError("invariant", "need a snapshot but none exists");
    }
    pr.becomeSnapshot({ meta: snap.meta, data: snap.data, acked: 0, sent: 0 });
    this.#event({
      kind: "snapshot",
      node: this.id,
      term: this.term,
      index: snap.meta.index,
      action: "send_started",
      peer: to,
      bytes: snap.data.length,
    });
    this.#sendSnapChunks(to, pr);
    return true;
  }

  #sendSnapChunks(to: NodeId, pr: Progress): void {
    const t = pr.snapshot;
    if (!t) return;
    const total = t.data.length;
    const window = this.#chunkBytes * SNAPSHOT_WINDOW_CHUNKS;
    do {
      if (t.sent > t.acked && t.sent >= total) return;
      if (t.sent - t.acked >= window) return;
      const end = Math.min(total, t.sent + this.#chunkBytes);
      this.#send({
        type: "snap",
        from: this.id,
        to,
        term: this.term,
        meta: t.meta,
        offset: t.sent,
        total,
        data: t.data.subarray(t.sent, end),
      });
      t.sent = end;
    } while (t.sent < total);
  }

  #handleAppResp(m: MessageOf<"appResp">, pr: Progress): void {
    pr.recentActive = true;
    if (m.reject) {
      if (m.echoMiss) {
        // The follower lost the proposal it forwarded: send whole entries.
        pr.noEchoUpTo = this.log.lastIndex();
      }
      let nextProbe = m.rejectHint;
      if (m.logTerm > 0) {
        nextProbe = this.log.findConflictByTerm(m.rejectHint, m.logTerm)[0];
      }
      if (pr.maybeDecrTo(m.index, nextProbe)) {
        if (pr.state === "replicate") pr.becomeProbe();
        this.#sendAppend(m.from, true);
      } else if (m.echoMiss && pr.state === "replicate") {
        pr.becomeProbe();
        pr.next = Math.min(pr.next, m.index + 1);
        this.#sendAppend(m.from, true);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    const updated = pr.maybeUpdate(m.index);
    if (
      pr.state === "snapshot" && pr.snapshot &&
      pr.match >= pr.snapshot.meta.index
    ) {
      // The follower has what the snapshot holds (it finished installing,
      // or it already had it): continue with entries, or a newer snapshot
      // if the log was compacted meanwhile.
      pr.becomeProbe();
      if (updated && this.#maybeCommit()) this.#bcastAppend();
      else this.#sendAppend(m.from, true);
      return;
    }
    // In probe state an answer that matches `match` exactly (an empty
    // append) still proves the follower's log: start replicating.
    if (!updated && !(pr.state === "probe" && pr.match === m.index)) return;
    if (pr.state === "probe") {
      pr.becomeReplicate();
    } else if (pr.state === "replicate") {
      pr.inflights.freeLE(m.index);
    }
    if (this.#maybeCommit()) {
      // The new commit index rides on the next append; flushBcast (called
      // by ready()) sends it if no proposal comes first.
      this.needBcast = true;
    } else if (wasPaused) {
      this.#sendAppend(m.from, false);
    }
    // Fill the pipeline while flow control allows — unless a broadcast is
    // pending (proposals since the last Ready): it sends to this follower
    // too, in the same Ready as the others, so a site's followers get the
    // same appends together (what a relaying transport packs as one).
    while (!this.needBcast && this.#sendAppend(m.from, false)) {
      // keep sending
    }
    if (
      m.from === this.leadTransferee &&
      pr.match === this.log.lastIndex()
    ) {
      this.#sendTimeoutNow(m.from);
    }
  }

  #handleHeartbeatResp(m: MessageOf<"heartbeatResp">, pr: Progress): void {
    pr.recentActive = true;
    pr.probeSent = false;
    if (m.seq > pr.ackedSeq) pr.ackedSeq = m.seq;
    if (m.sentAt > pr.ackedSentAt) pr.ackedSentAt = m.sentAt;
    if (this.#guard) {
      this.#guard.samplePeer(
        m.from,
        m.sentAt,
        this.#clock(),
        m.now,
        m.wall,
        this.#wall?.(),
      );
    }
    if (pr.state === "replicate" && pr.inflights.full()) {
      pr.inflights.freeFirstOne();
    }
    if (pr.state === "snapshot" && pr.snapshot) {
      // Resume a transfer whose chunks may have been lost.
      pr.snapshot.sent = pr.snapshot.acked;
      this.#sendSnapChunks(m.from, pr);
    } else if (pr.match < this.log.lastIndex()) {
      this.#sendAppend(m.from, true);
    }
    this.#releaseReads();
  }

  #handleSnapResp(m: MessageOf<"snapResp">, pr: Progress): void {
    pr.recentActive = true;
    const t = pr.snapshot;
    if (pr.state !== "snapshot" || !t || t.meta.index !== m.index) return;
    if (m.offset < t.acked) {
      t.acked = m.offset;
      t.sent = m.offset;
    } else {
      t.acked = m.offset;
      if (t.sent < t.acked) t.sent = t.acked;
    }
    this.#sendSnapChunks(m.from, pr);
  }

  #bcastHeartbeat(): void {
    for (const [id, pr] of this.prs) {
      if (id === this.id) continue;
      this.#send({
        type: "heartbeat",
        from: this.id,
        to: id,
        term: this.term,
        // Never tell a follower to commit past what it is known to hold.
        commit: Math.min(pr.match, this.log.committed),
        seq: this.#heartbeatSeq,
        sentAt: this.#clock(),
      });
    }
  }

  // ---- follower handling ----

  #handleAppend(m: MessageOf<"app">): void {
    if (m.index < this.log.committed) {
      this.#sendAppResp(m.from, this.log.committed);
      return;
    }
    let ents = m.entries;
    for (let i = 0; i < ents.length; i++) {
      const e = ents[i]!;
      if (e.echo === undefined) continue;
      if (this.log.matchTerm(e.index, e.term)) continue;
      const held = this.#forwarded.get(e.echo);
      if (!held) {
        this.#send({
          type: "appResp",
          from: this.id,
          to: m.from,
          term: this.term,
          index: m.index,
          reject: true,
          rejectHint: Math.min(m.index, this.log.lastIndex()),
          logTerm: 0,
          echoMiss: true,
        });
        return;
      }
      if (ents === m.entries) ents = [...ents];
      ents[i] = {
        term: e.term,
        index: e.index,
        type: held.type,
        data: held.data,
      };
      this.#forwarded.delete(e.echo);
    }
    const last = this.log.maybeAppend(m.index, m.logTerm, m.commit, ents);
    if (last !== undefined) {
      this.#sendAppResp(m.from, last);
      return;
    }
    let hintIndex = Math.min(m.index, this.log.lastIndex());
    let hintTerm: number;
    [hintIndex, hintTerm] = this.log.findConflictByTerm(hintIndex, m.logTerm);
    this.#send({
      type: "appResp",
      from: this.id,
      to: m.from,
      term: this.term,
      index: m.index,
      reject: true,
      rejectHint: hintIndex,
      logTerm: hintTerm,
    });
  }

  #sendAppResp(to: NodeId, index: number): void {
    this.#send({
      type: "appResp",
      from: this.id,
      to,
      term: this.term,
      index,
      reject: false,
      rejectHint: 0,
      logTerm: 0,
    });
  }

  #handleHeartbeat(m: MessageOf<"heartbeat">): void {
    this.log.commitTo(Math.min(m.commit, this.log.lastIndex()));
    this.#send({
      type: "heartbeatResp",
      from: this.id,
      to: m.from,
      term: this.term,
      seq: m.seq,
      sentAt: m.sentAt,
      now: this.#clock(),
      ...(this.#wall ? { wall: this.#wall() } : {}),
    });
  }

  #handleSnap(m: MessageOf<"snap">): void {
    const reply = (offset: number) =>
      this.#send({
        type: "snapResp",
        from: this.id,
        to: m.from,
        term: this.term,
        index: m.meta.index,
        offset,
      });
    if (m.meta.index <= this.log.committed) {
      this.#sendAppResp(m.from, this.log.committed);
      return;
    }
    let r = this.#snapRecv;
    // Only bytes from the same leader in the same term are resumed: another
    // leader's snapshot of the same index may be serialized differently,
    // and splicing the two would corrupt it. A new sender starts over.
    if (
      !r || r.index !== m.meta.index || r.term !== m.meta.term ||
      r.from !== m.from || r.leaderTerm !== m.term
    ) {
      if (m.offset !== 0) {
        reply(0);
        return;
      }
      r = {
        index: m.meta.index,
        term: m.meta.term,
        from: m.from,
        leaderTerm: m.term,
        total: m.total,
        chunks: [],
        received: 0,
      };
      this.#snapRecv = r;
    }
    if (m.offset !== r.received) {
      reply(r.received);
      return;
    }
    if (m.data.length > 0) r.chunks.push(m.data.slice());
    r.received += m.data.length;
    if (r.received < r.total) {
      reply(r.received);
      return;
    }
    this.#snapRecv = undefined;
    const data = new Uint8Array(r.total);
    let off = 0;
    for (const c of r.chunks) {
      data.set(c, off);
      off += c.length;
    }
    if (this.#restore({ meta: m.meta, data })) {
      this.#event({
        kind: "snapshot",
        node: this.id,
        term: this.term,
        index: m.meta.index,
        action: "restored",
        peer: m.from,
        bytes: data.length,
      });
      this.#sendAppResp(m.from, this.log.lastIndex());
    } else {
      this.#sendAppResp(m.from, this.log.committed);
    }
  }

  #restore(snap: Snapshot): boolean {
    if (snap.meta.index <= this.log.committed) return false;
    if (this.log.matchTerm(snap.meta.index, snap.meta.term)) {
      this.log.commitTo(snap.meta.index);
      return false;
    }
    this.log.restore(snap);
    this.#setConf(snap.meta.confState);
    return true;
  }

  // ---- reads ----

  #leaderReadIndex(m: MessageOf<"readIndex">): void {
    if (this.#soleVoter()) {
      this.#answerRead(m.from, m.ctx, this.log.committed);
      return;
    }
    if (!this.#committedInTerm()) {
      this.#readsBeforeCommit.push(m);
      return;
    }
    if (this.#readOnly === "lease" && this.leaseValid()) {
      this.#answerRead(m.from, m.ctx, this.log.committed);
      return;
    }
    const seq = ++this.#heartbeatSeq;
    this.#pendingReads.push({
      index: this.log.committed,
      ctx: m.ctx,
      from: m.from,
      seq,
    });
    this.#bcastHeartbeat();
  }

  #answerRead(from: NodeId, ctx: string, index: number): void {
    if (from === this.id || from === NONE) {
      this.readStates.push({ index, ctx });
    } else {
      this.#send({
        type: "readIndexResp",
        from: this.id,
        to: from,
        term: this.term,
        ctx,
        index,
      });
    }
  }

  #quorumValue(
    get: (pr: Progress, self: boolean, id: NodeId) => number,
  ): number {
    const v = this.#jointMajority((id) => {
      const pr = this.prs.get(id);
      return pr ? get(pr, id === this.id, id) : -Infinity;
    });
    return v === Infinity ? -Infinity : v;
  }

  #releaseReads(): void {
    if (this.#pendingReads.length === 0) return;
    const acked = this.#quorumValue((pr, self) =>
      self ? this.#heartbeatSeq : pr.ackedSeq
    );
    let n = 0;
    for (const r of this.#pendingReads) {
      if (r.seq > acked) break;
      this.#answerRead(r.from, r.ctx, r.index);
      n++;
    }
    if (n > 0) this.#pendingReads = this.#pendingReads.slice(n);
  }

  /**
   * True when this leader holds a read lease: a quorum acknowledged
   * heartbeats sent less than `(electionTick - leaseDriftTicks) × tickMs` ago
   * by the clock, so no other leader can have been elected (followers that
   * heard from a leader within an election timeout ignore votes).
   */
  leaseValid(): boolean {
    return this.leaseState().valid;
  }

  /** Whether the lease holds now, and why not (for status pages). */
  leaseState(): LeaseState {
    const no = (reason: string): LeaseState => ({ valid: false, reason });
    if (this.role !== "leader") return no("not the leader");
    const now = this.#clock();
    // Ticks late right now (a process resumed before its timer fired).
    this.#observeClocks(now);
    if (this.leadTransferee !== NONE) return no("leadership transfer");
    // A TimeoutNow may arrive late, after the transfer was given up, and its
    // campaign bypasses the followers' lease: no lease for the rest of the term.
    if (this.#timeoutNowSent) return no("TimeoutNow sent in this term");
    if (!this.#checkQuorum) return no("check-quorum is off");
    if (!this.#committedInTerm()) {
      return no("no entry of this term committed yet");
    }
    const local = this.#guard?.localProblem(now);
    if (local !== undefined) return no(`clock suspect: ${local}`);
    if (this.#soleVoter()) return { valid: true, until: Infinity };
    const oldest = this.#quorumValue((pr, self, id) =>
      self
        ? now
        : this.#guard && !this.#guard.peerTrusted(id)
        ? -Infinity
        : pr.ackedSentAt
    );
    if (oldest === -Infinity) {
      return no(
        this.#guard
          ? "no quorum of peers with acknowledged heartbeats and trusted clocks"
          : "no quorum of acknowledged heartbeats",
      );
    }
    if (oldest < this.#leaseFloor) {
      return no(
        `${this.#gapNote ?? "lease voided"}: waiting for a fresh quorum round`,
      );
    }
    const until = oldest + this.#leaseTime;
    if (now >= until) return no("expired: no recent quorum acknowledgement");
    return { valid: true, until };
  }

  /** The clock guard's verdict (undefined when the guard is off). */
  clockVerdict(): ClockVerdict | undefined {
    return this.#guard?.verdict(this.#clock());
  }

  /**
   * Samples the clocks: a gap since the last tick beyond `maxTickGap`
   * voids the lease; the guard gets a local reading.
   */
  #observeClocks(now: number): void {
    const gap = now - this.#lastTickAt;
    if (gap > this.#maxTickGap && this.#leaseFloor < this.#lastTickAt) {
      this.stats.tickGaps++;
      this.#leaseFloor = now;
      this.#gapNote = `a ${Math.round(gap)} ms gap between ticks`;
    }
    if (this.#guard && this.#wall) this.#guard.sampleLocal(now, this.#wall());
  }

  // ---- leadership transfer ----

  #leaderTransfer(target: NodeId): void {
    const pr = this.prs.get(target);
    if (!pr || pr.isLearner) return;
    if (this.leadTransferee !== NONE) {
      if (this.leadTransferee === target) return;
      this.#abortTransfer();
    }
    if (target === this.id) return;
    // The transfer must finish within one election timeout.
    this.#electionElapsed = 0;
    this.leadTransferee = target;
    this.#event({
      kind: "transfer",
      node: this.id,
      term: this.term,
      target,
      phase: "started",
    });
    if (pr.match === this.log.lastIndex()) this.#sendTimeoutNow(target);
    else this.#sendAppend(target, true);
  }

  #sendTimeoutNow(to: NodeId): void {
    this.#timeoutNowSent = true;
    this.#send({ type: "timeoutNow", from: this.id, to, term: this.term });
  }

  #abortTransfer(): void {
    if (this.leadTransferee === NONE) return;
    this.#event({
      kind: "transfer",
      node: this.id,
      term: this.term,
      target: this.leadTransferee,
      phase: "aborted",
    });
    this.leadTransferee = NONE;
  }

  // ---- membership ----

  /**
   * Applies the data of a committed "conf" entry of either kind (a single
   * change, or a joint change / the leave of a joint configuration).
   */
  applyConfEntry(data: Uint8Array, index = 0): void {
    const any: AnyConfChange | undefined = decodeAnyConfChange(data);
    if (!any) return;
    if (any.v === 1) {
      this.applyConfChange(any.cc, index);
      return;
    }
    const { changes, transition } = any.cc;
    if (changes.length === 0) {
      this.#leaveJoint(index);
    } else if (changes.length === 1 && transition === "auto") {
      if (!this.joint()) this.applyConfChange(changes[0]!, index);
    } else {
      this.#enterJoint(changes, transition === "auto", index);
    }
  }

  /**
   * Enters a joint configuration: the current voters become the outgoing
   * set, `changes` make the incoming one; until it is left, elections and
   * commitment need a majority of both. Idempotent (ignored when already
   * joint), so replays after a restart are harmless.
   */
  #enterJoint(changes: ConfChange[], autoLeave: boolean, index: number): void {
    if (this.joint()) return;
    for (const v of this.voters) this.votersOutgoing.add(v);
    const next = this.log.lastIndex() + 1;
    for (const cc of changes) {
      const id = cc.nodeId;
      switch (cc.type) {
        case "addNode":
          this.voters.add(id);
          this.learners.delete(id);
          this.learnersNext.delete(id);
          break;
        case "addLearner":
          this.voters.delete(id);
          // An outgoing voter cannot also be a learner: it becomes one on leaving.
          if (this.votersOutgoing.has(id)) this.learnersNext.add(id);
          else this.learners.add(id);
          break;
        case "removeNode":
          this.voters.delete(id);
          this.learners.delete(id);
          this.learnersNext.delete(id);
          break;
      }
    }
    this.autoLeave = autoLeave;
    this.#syncProgress(next);
    this.#confEvent(changes, index);
    this.#afterConfChange();
  }

  /** Leaves a joint configuration: only the incoming voters remain. */
  #leaveJoint(index: number): void {
    if (!this.joint()) return;
    this.votersOutgoing.clear();
    for (const l of this.learnersNext) this.learners.add(l);
    this.learnersNext.clear();
    this.autoLeave = false;
    this.#syncProgress(this.log.lastIndex() + 1);
    this.#confEvent([], index);
    this.#afterConfChange();
  }

  /** Gives every member a progress entry (with its learner flag) and drops the others'. */
  #syncProgress(next: number): void {
    const voters = this.#allVoters();
    const members = new Set([
      ...voters,
      ...this.learners,
      ...this.learnersNext,
    ]);
    for (const id of members) {
      const learner = !voters.has(id);
      const pr = this.prs.get(id);
      if (pr) pr.isLearner = learner;
      else this.prs.set(id, this.#newProgress(next, learner));
    }
    for (const id of [...this.prs.keys()]) {
      if (!members.has(id) && id !== this.id) this.prs.delete(id);
    }
    if (this.leadTransferee !== NONE && !voters.has(this.leadTransferee)) {
      this.#abortTransfer();
    }
  }

  #confEvent(changes: ConfChange[], index: number): void {
    const cs = this.confState();
    this.#event({
      kind: "conf_change",
      node: this.id,
      term: this.term,
      index,
      ...(changes[0] ? { change: changes[0] } : {}),
      changes,
      joint: this.joint(),
      voters: cs.voters,
      learners: cs.learners,
      ...(cs.votersOutgoing ? { votersOutgoing: cs.votersOutgoing } : {}),
    });
  }

  /**
   * etcd's auto-leave: a leader in a joint configuration marked `autoLeave`
   * appends the empty change that leaves it, once every membership change
   * in its log is applied (called after each apply).
   */
  maybeAutoLeave(): void {
    if (
      this.role !== "leader" || !this.joint() || !this.autoLeave ||
      this.pendingConfIndex > this.log.applied || this.leadTransferee !== NONE
    ) return;
    const leave: Entry = {
      term: 0,
      index: 0,
      type: "conf",
      data: encodeConfChangeV2({ changes: [], transition: "auto" }),
    };
    if (this.#appendEntries([leave])) {
      this.pendingConfIndex = this.log.lastIndex();
      this.needBcast = true;
    }
  }

  /** What a leader does once a membership change is applied. */
  #afterConfChange(): void {
    if (this.role !== "leader") return;
    if (!this.promotable()) {
      // Safe removal of the leader: the change is committed, so a new
      // leader can be elected from the remaining voters.
      this.#event({
        kind: "step_down",
        node: this.id,
        term: this.term,
        reason: "removed",
      });
      this.becomeFollower(this.term, NONE);
      return;
    }
    if (this.#maybeCommit()) this.#bcastAppend();
    else {
      for (const id of this.prs.keys()) {
        if (id !== this.id) this.#sendAppend(id, false);
      }
    }
  }

  /**
   * Applies a committed membership change (called when its entry is
   * applied). Idempotent, so replays after a restart are harmless.
   */
  applyConfChange(cc: ConfChange, index = 0): void {
    // Never proposed while joint (the leader refuses it); ignore it anyway.
    if (this.joint()) return;
    const already = cc.type === "addNode"
      ? this.voters.has(cc.nodeId)
      : cc.type === "addLearner"
      ? this.learners.has(cc.nodeId)
      : !this.voters.has(cc.nodeId) && !this.learners.has(cc.nodeId);
    if (already) return;
    const next = this.log.lastIndex() + 1;
    switch (cc.type) {
      case "addNode": {
        this.learners.delete(cc.nodeId);
        this.voters.add(cc.nodeId);
        const pr = this.prs.get(cc.nodeId);
        if (pr) pr.isLearner = false;
        else this.prs.set(cc.nodeId, this.#newProgress(next, false));
        break;
      }
      case "addLearner": {
        this.voters.delete(cc.nodeId);
        this.learners.add(cc.nodeId);
        const pr = this.prs.get(cc.nodeId);
        if (pr) pr.isLearner = true;
        else this.prs.set(cc.nodeId, this.#newProgress(next, true));
        break;
      }
      case "removeNode":
        this.voters.delete(cc.nodeId);
        this.learners.delete(cc.nodeId);
        if (cc.nodeId !== this.id) this.prs.delete(cc.nodeId);
        if (this.leadTransferee === cc.nodeId) this.#abortTransfer();
        break;
    }
    this.#confEvent([cc], index);
    this.#afterConfChange();
  }
}
