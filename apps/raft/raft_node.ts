/**
 * One replicated-KV node: the thin I/O shell around packages/raft's pure
 * core. It owns the timers (ticks), the disk (storage's segmented log with
 * group commit, the snapshot store, the hard-state file) and the sockets
 * (transport's TCP RPC between peers), and feeds the core's Ready through
 * them in the order the core demands: persist, then send, then apply.
 */
import { defineMessage, openEnvelope, sealEnvelope } from "@strata/codec";
import {
  type ConfState,
  type Entry,
  entrySchema,
  type HardState,
  isRaftError,
  MemoryStorage,
  type Message,
  type RaftEvent,
  raftMessageSet,
  raftMessageTypes,
  RawNode,
  type Ready,
} from "@strata/raft";
import {
  DirLock,
  SegmentedLog,
  SnapshotStore,
  writeFileAtomic,
} from "@strata/storage";
import {
  listenTcp,
  ReconnectingClient,
  type TcpServer,
} from "@strata/transport";
import { join } from "node:path";
import { type KvCommand, KvProposal } from "./kv_commands.ts";
import { type KvResult, KvStateMachine } from "./kv_state_machine.ts";
import {
  type Consistency,
  type KvService,
  type MemberChange,
  type MemberInfo,
  ServiceError,
  type ServiceStatus,
} from "./kv_service.ts";
import { NodeMetrics } from "./node_metrics.ts";
import { WatchHub } from "./watch_hub.ts";

/** Addresses of one member. */
export interface PeerAddress {
  /** Raft TCP address, host:port. */
  peer: string;
  /** HTTP address, host:port. */
  http?: string;
}

/** Configuration of a node. */
export interface RaftNodeConfig {
  /** This node's id (> 0). */
  id: number;
  /** The initial members (this node included), id → addresses. */
  members: Map<number, PeerAddress>;
  /** Data directory (locked to this process). */
  dataDir: string;
  /** Host and port the raft TCP server binds. */
  listen: { hostname: string; port: number };
  /** This node's HTTP address, for redirect hints (host:port). */
  httpAddress?: string;
  /** Start as a new member of an existing cluster (no bootstrap). */
  join?: boolean;
  /** Milliseconds per raft tick (default 100). */
  tickMs?: number;
  /** Ticks without a leader before campaigning (default 10: 1 s at 100 ms). */
  electionTicks?: number;
  /** Take a snapshot after this many applied entries (default 100,000, as etcd's --snapshot-count). */
  snapshotEntries?: number;
  /** Shared secret for peer authentication (HMAC in the handshake). */
  secret?: string;
  /** Log segment size in bytes (default 64 MiB). */
  segmentBytes?: number;
}

const LogEntry = defineMessage("raft.logEntry", entrySchema);
const HARD_STATE_KIND = "HARD";
const typeByName = new Map(
  raftMessageTypes.map((t) => [t.name.slice("raft.".length), t]),
);
const MEMBER_PREFIX = "_cluster/members/";

interface Waiter {
  resolve(r: KvResult): void;
  reject(e: unknown): void;
}

interface ReadWaiter {
  resolve(): void;
  reject(e: unknown): void;
  index?: number;
}

type ResolvedConfig =
  & Required<
    Pick<
      RaftNodeConfig,
      "tickMs" | "electionTicks" | "snapshotEntries" | "segmentBytes"
    >
  >
  & RaftNodeConfig;

/** A running node. Create with {@link RaftNode.start}. */
export class RaftNode implements KvService {
  readonly store: KvStateMachine;
  readonly watches: WatchHub = new WatchHub();
  readonly metricsRegistry: NodeMetrics = new NodeMetrics();

  readonly #cfg: ResolvedConfig;
  readonly #lock: DirLock;
  readonly #log: SegmentedLog;
  readonly #snaps: SnapshotStore;
  readonly #mem: MemoryStorage;
  readonly #node: RawNode;
  readonly #addresses: Map<number, PeerAddress>;
  #server: TcpServer<typeof raftMessageTypes> | undefined;
  readonly #peers = new Map<
    number,
    ReconnectingClient<typeof raftMessageTypes>
  >();
  #ticker: ReturnType<typeof setInterval> | undefined;
  #driving = false;
  #again = false;
  #stopped = false;
  #failure: unknown;
  #nextRequest = 0;
  readonly #waiters = new Map<string, Waiter>();
  #nextRead = 0;
  readonly #reads = new Map<string, ReadWaiter>();
  /** Reads waiting for the applied index to reach theirs. */
  #applyWaits: Array<{ index: number; resolve(): void }> = [];
  #snapshotIndex = 0;
  #snapshotting = false;
  #hard: HardState;
  #lead = 0;
  #role = "follower";
  readonly #proposedAt = new Map<string, number>();
  readonly #events: RaftEvent[] = [];

  private constructor(
    cfg: ResolvedConfig,
    store: KvStateMachine,
    lock: DirLock,
    log: SegmentedLog,
    snaps: SnapshotStore,
    mem: MemoryStorage,
    node: RawNode,
    hard: HardState,
    snapshotIndex: number,
  ) {
    this.#cfg = cfg;
    this.store = store;
    this.#lock = lock;
    this.#log = log;
    this.#snaps = snaps;
    this.#mem = mem;
    this.#node = node;
    this.#hard = hard;
    this.#snapshotIndex = snapshotIndex;
    this.#addresses = new Map(cfg.members);
  }

  /**
   * Opens (or creates) the data directory, recovers the snapshot and log,
   * binds the raft port and starts ticking.
   * @throws StorageError `locked` when another process owns the directory.
   */
  static async start(config: RaftNodeConfig): Promise<RaftNode> {
    const cfg = {
      tickMs: 100,
      electionTicks: 10,
      snapshotEntries: 100_000,
      segmentBytes: 64 * 2 ** 20,
      ...config,
    };
    await Deno.mkdir(cfg.dataDir, { recursive: true });
    const lock = await DirLock.acquire(cfg.dataDir);
    let log: SegmentedLog | undefined;
    let snaps: SnapshotStore | undefined;
    try {
      snaps = await SnapshotStore.open(join(cfg.dataDir, "snapshots"), {
        keep: 2,
      });
      log = await SegmentedLog.open(join(cfg.dataDir, "log"), {
        sync: "always",
        segmentBytes: cfg.segmentBytes,
      });
      const mem = new MemoryStorage();
      const store = new KvStateMachine();
      const { snapshot } = await snaps.loadNewest();
      let snapIndex = 0;
      if (snapshot) {
        const data = await snapshot.readState();
        store.restore(data);
        snapIndex = snapshot.meta.lastIncludedIndex;
        mem.applySnapshot({
          meta: {
            index: snapIndex,
            term: snapshot.meta.lastIncludedTerm,
            confState: {
              voters: snapshot.meta.configuration.voters.map(Number),
              learners: snapshot.meta.configuration.learners.map(Number),
            },
          },
          data,
        });
      }
      // The log may start before the snapshot (not yet compacted) but never after it.
      if (log.lastIndex > 0 && log.firstIndex > snapIndex + 1) {
        throw new ServiceError(
          "internal",
          `log starts at ${log.firstIndex} but the snapshot covers only through ${snapIndex}`,
        );
      }
      const from = Math.max(log.firstIndex, snapIndex + 1);
      if (log.lastIndex >= from) {
        const records = await log.read(from, log.lastIndex + 1);
        mem.append(records.map((r) => LogEntry.decode(r) as Entry));
      }
      const hard = await readHardState(cfg.dataDir);
      const commit = Math.min(
        Math.max(hard.commit, snapIndex),
        mem.lastIndex(),
      );
      const hs = { ...hard, commit };
      mem.setHardState(hs);
      const fresh = snapIndex === 0 && mem.lastIndex() === 0 && hard.term === 0;
      const node = new RawNode({
        id: cfg.id,
        storage: mem,
        peers: fresh && !cfg.join
          ? [...cfg.members.keys()].sort((a, b) => a - b)
          : undefined,
        electionTick: cfg.electionTicks,
        heartbeatTick: 1,
        random: Math.random,
        applied: snapIndex,
        preVote: true,
        checkQuorum: true,
        readOnly: "safe",
        maxSizePerMsg: 1 << 20,
        maxInflightMsgs: 256,
        maxUncommittedEntriesSize: 64 << 20,
      });
      // The state comes from the snapshot; the log tail is re-applied as it commits.
      const n = new RaftNode(
        cfg,
        store,
        lock,
        log,
        snaps,
        mem,
        node,
        hs,
        snapIndex,
      );
      n.watches.advanceTo(snapIndex);
      await n.#listen();
      n.#learnAddressesFromStore();
      n.#ticker = setInterval(() => n.#tick(), cfg.tickMs);
      n.#drive();
      return n;
    } catch (e) {
      await log?.close().catch(() => {});
      snaps?.close();
      lock.release();
      throw e;
    }
  }

  /** The last (up to 1,000) structured raft events: roles, votes, conf changes. */
  events(): readonly RaftEvent[] {
    return this.#events;
  }

  /** The raft TCP port actually bound. */
  get peerPort(): number {
    return this.#server?.port ?? 0;
  }

  /** The node's id. */
  get id(): number {
    return this.#cfg.id;
  }

  /** Stops ticking, closes sockets and files, releases the directory. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#ticker);
    const err = new ServiceError("unavailable", "the node is stopping");
    for (const w of this.#waiters.values()) w.reject(err);
    for (const r of this.#reads.values()) r.reject(err);
    this.#waiters.clear();
    this.#reads.clear();
    for (const p of this.#peers.values()) await p.close().catch(() => {});
    await this.#server?.close().catch(() => {});
    while (this.#driving) await new Promise((r) => setTimeout(r, 5));
    await this.#log.close().catch(() => {});
    this.#snaps.close();
    this.#lock.release();
  }

  // ---- KvService ----

  propose(command: KvCommand, signal: AbortSignal): Promise<KvResult> {
    this.#assertRunning();
    const requestId = `${this.#cfg.id}.${++this.#nextRequest}`;
    const data = KvProposal.encode({ requestId, command });
    return new Promise<KvResult>((resolve, reject) => {
      const done = () => {
        this.#waiters.delete(requestId);
        this.#proposedAt.delete(requestId);
        signal.removeEventListener("abort", onAbort);
      };
      const onAbort = () => {
        done();
        reject(
          new ServiceError(
            "timeout",
            "the request deadline passed before the write was applied; it may still commit",
          ),
        );
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort);
      this.#waiters.set(requestId, {
        resolve: (r) => {
          done();
          resolve(r);
        },
        reject: (e) => {
          done();
          reject(e);
        },
      });
      this.#proposedAt.set(requestId, performance.now());
      this.metricsRegistry.proposals.inc();
      // Proposals made in the same turn of the event loop go to the core as
      // one batch: one step, one forwarded message from a follower.
      this.#batch.push({ data, requestId });
      if (this.#batch.length === 1) {
        queueMicrotask(() => this.#flushProposals());
      }
    });
  }

  async readBarrier(
    consistency: Consistency,
    signal: AbortSignal,
  ): Promise<void> {
    this.#assertRunning();
    if (consistency === "stale") return;
    if (
      consistency === "lease" && this.#role === "leader" &&
      this.#node.leaseValid()
    ) {
      await this.#waitApplied(this.#node.status().commit, signal);
      return;
    }
    if (this.#lead === 0) {
      throw new ServiceError(
        "no_leader",
        "no leader is known right now; retry shortly",
      );
    }
    const ctx = `${this.#cfg.id}.r${++this.#nextRead}`;
    const index = await new Promise<number>((resolve, reject) => {
      const onAbort = () => {
        this.#reads.delete(ctx);
        reject(
          new ServiceError(
            "timeout",
            "the read deadline passed before the leader confirmed its term",
          ),
        );
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#reads.set(ctx, {
        resolve: () => {
          signal.removeEventListener("abort", onAbort);
          resolve(this.#reads.get(ctx)?.index ?? 0);
          this.#reads.delete(ctx);
        },
        reject: (e) => {
          signal.removeEventListener("abort", onAbort);
          this.#reads.delete(ctx);
          reject(e);
        },
      });
      this.#node.readIndex(ctx);
      this.#drive();
    });
    await this.#waitApplied(index, signal);
  }

  status(): ServiceStatus {
    const s = this.#node.status();
    return {
      id: this.#cfg.id,
      role: s.role,
      term: s.term,
      leader: s.lead,
      leaderHttp: this.#addresses.get(s.lead)?.http,
      commitIndex: s.commit,
      appliedIndex: this.store.appliedIndex,
      firstIndex: this.#mem.firstIndex(),
      lastIndex: s.lastIndex,
      logBytes: 0,
      snapshotIndex: this.#snapshotIndex,
      keys: this.store.size,
      sessions: this.store.sessionCount,
      watchers: this.watches.watchers,
    };
  }

  members(): MemberInfo[] {
    const cs = this.#node.confState();
    const info = (id: number, role: "voter" | "learner"): MemberInfo => ({
      id,
      role,
      ...(this.#addresses.get(id)?.peer
        ? { peerAddress: this.#addresses.get(id)!.peer }
        : {}),
      ...(this.#addresses.get(id)?.http
        ? { httpAddress: this.#addresses.get(id)!.http }
        : {}),
    });
    return [
      ...cs.voters.map((id) => info(id, "voter")),
      ...cs.learners.map((id) => info(id, "learner")),
    ]
      .sort((a, b) => a.id - b.id);
  }

  async changeMembership(
    change: MemberChange,
    signal: AbortSignal,
  ): Promise<MemberInfo[]> {
    if (this.#node.status().role !== "leader") {
      throw new ServiceError(
        "no_leader",
        "membership changes go to the leader",
        {
          leader: this.#lead,
          leaderHttp: this.#addresses.get(this.#lead)?.http,
        },
      );
    }
    const cs = this.#node.confState();
    if (change.action === "add") {
      if (cs.voters.includes(change.id) || cs.learners.includes(change.id)) {
        throw new ServiceError(
          "conflict",
          `node ${change.id} is already a member`,
        );
      }
      // Addresses travel through the log as ordinary keys, so every member learns them.
      await this.propose({
        op: "put",
        key: MEMBER_PREFIX + change.id,
        value: new TextEncoder().encode(
          JSON.stringify({
            peer: change.peerAddress,
            http: change.httpAddress,
          }),
        ),
      }, signal);
    } else if (
      change.action === "promote" && !cs.learners.includes(change.id)
    ) {
      throw new ServiceError("conflict", `node ${change.id} is not a learner`);
    } else if (
      change.action === "remove" && !cs.voters.includes(change.id) &&
      !cs.learners.includes(change.id)
    ) {
      throw new ServiceError("not_found", `node ${change.id} is not a member`);
    }
    const type = change.action === "add"
      ? "addLearner"
      : change.action === "promote"
      ? "addNode"
      : "removeNode";
    try {
      this.#node.proposeConfChange({ type, nodeId: change.id });
    } catch (e) {
      if (isRaftError(e)) {
        throw new ServiceError(
          "conflict",
          `membership change refused: ${e.message}`,
        );
      }
      throw e;
    }
    this.#drive();
    // Wait until the change is applied here.
    const want = (c: ConfState) =>
      change.action === "remove"
        ? !c.voters.includes(change.id) && !c.learners.includes(change.id)
        : change.action === "add"
        ? c.learners.includes(change.id) || c.voters.includes(change.id)
        : c.voters.includes(change.id);
    while (!want(this.#node.confState())) {
      if (signal.aborted) {
        throw new ServiceError(
          "timeout",
          "the membership change did not apply before the deadline",
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    if (change.action === "remove") {
      await this.propose(
        { op: "delete", key: MEMBER_PREFIX + change.id },
        signal,
      ).catch(() => {});
    }
    return this.members();
  }

  async transferLeadership(
    to: number | undefined,
    signal: AbortSignal,
  ): Promise<number> {
    if (this.#node.status().role !== "leader") {
      throw new ServiceError(
        "no_leader",
        "only the leader can hand over leadership",
        { leader: this.#lead },
      );
    }
    const s = this.#node.status();
    const target = to ?? Object.entries(s.progress ?? {})
      .filter(([id, p]) => Number(id) !== this.#cfg.id && !p.learner)
      .sort((a, b) => b[1].match - a[1].match)[0]?.[0];
    if (target === undefined) {
      throw new ServiceError(
        "conflict",
        "no other voter to hand leadership to",
      );
    }
    const targetId = Number(target);
    if (!s.confState.voters.includes(targetId)) {
      throw new ServiceError("bad_request", `node ${targetId} is not a voter`);
    }
    this.#node.transferLeadership(targetId);
    this.#drive();
    while (this.#lead !== targetId) {
      if (signal.aborted) {
        throw new ServiceError(
          "timeout",
          `leadership did not move to ${targetId} before the deadline`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    return targetId;
  }

  metrics(): Promise<string> {
    const s = this.#node.status();
    this.metricsRegistry.setGauges({
      term: s.term,
      commit: s.commit,
      applied: this.store.appliedIndex,
      isLeader: s.role === "leader" ? 1 : 0,
      keys: this.store.size,
      watchers: this.watches.watchers,
      echoBytesSaved: s.stats.echoBytesSaved,
      proposalsDropped: s.stats.proposalsDropped,
    });
    return this.metricsRegistry.render();
  }

  observeRequest(route: string, status: number, seconds: number): void {
    this.metricsRegistry.httpRequests.observe(
      { route, status: String(status) },
      seconds,
    );
  }

  #batch: Array<{ data: Uint8Array; requestId: string }> = [];

  #flushProposals(): void {
    const batch = this.#batch;
    this.#batch = [];
    if (batch.length === 0 || this.#stopped) return;
    try {
      this.#node.proposeBatch(batch.map((p) => p.data));
    } catch (e) {
      const err = isRaftError(e, "proposal_dropped")
        ? new ServiceError(
          "no_leader",
          "no leader is known right now; retry shortly",
          { leader: this.#lead },
        )
        : e;
      for (const p of batch) this.#waiters.get(p.requestId)?.reject(err);
      return;
    }
    this.#drive();
  }

  // ---- the Ready loop ----

  #tick(): void {
    if (this.#stopped) return;
    this.#node.tick();
    this.#maybeExpireSessions();
    this.#drive();
  }

  #assertRunning(): void {
    if (this.#stopped) {
      throw new ServiceError("unavailable", "the node is stopped");
    }
    if (this.#failure) {
      throw new ServiceError(
        "unavailable",
        `the node failed: ${this.#failure}`,
      );
    }
  }

  /** Runs Ready cycles until there is nothing to do; one at a time. */
  #drive(): void {
    if (this.#driving) {
      this.#again = true;
      return;
    }
    if (this.#stopped) return;
    this.#driving = true;
    (async () => {
      try {
        do {
          this.#again = false;
          while (!this.#stopped && this.#node.hasReady()) {
            await this.#handle(this.#node.ready());
            this.#node.advance();
          }
        } while (this.#again && !this.#stopped);
      } catch (e) {
        // A disk error means this node can no longer keep its promises.
        this.#failure = e;
        console.error(
          `raft node ${this.#cfg.id}: fatal: ${
            e instanceof Error ? e.message : e
          }`,
        );
        for (const w of this.#waiters.values()) {
          w.reject(new ServiceError("unavailable", "the node failed"));
        }
      } finally {
        this.#driving = false;
      }
    })();
  }

  async #handle(rd: Ready): Promise<void> {
    // 1. Persist: snapshot, entries, hard state (fsync before any message leaves).
    if (rd.snapshot) {
      const meta = rd.snapshot.meta;
      await this.#snaps.save({
        lastIncludedIndex: meta.index,
        lastIncludedTerm: meta.term,
        configuration: {
          voters: meta.confState.voters.map(String),
          learners: meta.confState.learners.map(String),
        },
      }, rd.snapshot.data);
      await this.#log.reset(meta.index + 1);
      this.#mem.applySnapshot(rd.snapshot);
      this.#snapshotIndex = meta.index;
    }
    if (rd.entries.length > 0) {
      const first = rd.entries[0]!.index;
      if (first <= this.#log.lastIndex) await this.#log.truncateSuffix(first);
      if (first !== this.#log.lastIndex + 1) {
        throw new ServiceError(
          "internal",
          `log gap: appending ${first} after ${this.#log.lastIndex}`,
        );
      }
      const started = performance.now();
      await this.#log.append(
        rd.entries.map((e) =>
          LogEntry.encode({
            term: e.term,
            index: e.index,
            type: e.type,
            data: e.data,
          })
        ),
      );
      this.metricsRegistry.fsyncSeconds.observe(
        (performance.now() - started) / 1000,
      );
      this.#mem.append(rd.entries);
    }
    if (rd.hardState) {
      const hs = rd.hardState;
      if (hs.term !== this.#hard.term || hs.vote !== this.#hard.vote) {
        await writeHardState(this.#cfg.dataDir, hs);
      }
      this.#hard = hs;
      this.#mem.setHardState(hs);
    }
    if (rd.softState) {
      if (rd.softState.lead !== this.#lead && rd.softState.lead !== 0) {
        this.metricsRegistry.leaderChanges.inc();
      }
      this.#lead = rd.softState.lead;
      this.#role = rd.softState.role;
      if (this.#role !== "leader") this.#failForwardedReadsIfLeaderless();
    }
    // 2. Send.
    for (const m of rd.messages) this.#send(m);
    // 3. Apply.
    if (rd.snapshot) {
      this.store.restore(rd.snapshot.data);
      this.watches.advanceTo(rd.snapshot.meta.index);
      this.#learnAddressesFromStore();
    }
    for (const e of rd.committedEntries) this.#apply(e);
    // 4. Reads whose point is known.
    for (const rs of rd.readStates) {
      const w = this.#reads.get(rs.ctx);
      if (w) {
        w.index = rs.index;
        w.resolve();
      }
    }
    this.#releaseApplyWaits();
    for (const ev of rd.events) {
      if (
        ev.kind === "role" && (ev.role === "candidate" || ev.role === "leader")
      ) {
        this.metricsRegistry.elections.inc({
          outcome: ev.role === "leader" ? "won" : "started",
        });
      }
      this.#events.push(ev);
      if (this.#events.length > 1000) {
        this.#events.splice(0, this.#events.length - 1000);
      }
    }
    if (
      !this.#snapshotting &&
      this.store.appliedIndex - this.#snapshotIndex >= this.#cfg.snapshotEntries
    ) {
      this.#takeSnapshot();
    }
  }

  #apply(e: Entry): void {
    if (e.index <= this.store.appliedIndex) return;
    if (e.type !== "normal" || e.data.length === 0) {
      this.store.skip(e.index);
      this.watches.advanceTo(e.index);
      return;
    }
    let proposal: KvProposal;
    try {
      proposal = KvProposal.decode(e.data);
    } catch {
      // Not ours (or corrupt): nothing to apply, but the index is consumed.
      this.store.skip(e.index);
      return;
    }
    const out = this.store.apply(e.index, proposal.command);
    if (!out) return;
    this.watches.publish(out.events);
    if (
      proposal.command.op === "put" &&
      proposal.command.key.startsWith(MEMBER_PREFIX)
    ) this.#learnAddressesFromStore();
    const waiter = this.#waiters.get(proposal.requestId);
    if (waiter) {
      const t = this.#proposedAt.get(proposal.requestId);
      if (t !== undefined) {
        this.metricsRegistry.commitSeconds.observe(
          (performance.now() - t) / 1000,
        );
      }
      waiter.resolve(out.result);
    }
  }

  #waitApplied(index: number, signal: AbortSignal): Promise<void> {
    if (this.store.appliedIndex >= index) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const entry = { index, resolve: () => resolve() };
      this.#applyWaits.push(entry);
      signal.addEventListener("abort", () => {
        this.#applyWaits = this.#applyWaits.filter((w) => w !== entry);
        reject(
          new ServiceError(
            "timeout",
            "the deadline passed before this node caught up to the read point",
          ),
        );
      }, { once: true });
    });
  }

  #releaseApplyWaits(): void {
    if (this.#applyWaits.length === 0) return;
    const applied = this.store.appliedIndex;
    const still = [];
    for (const w of this.#applyWaits) {
      if (w.index <= applied) w.resolve();
      else still.push(w);
    }
    this.#applyWaits = still;
  }

  #failForwardedReadsIfLeaderless(): void {
    if (this.#lead !== 0) return;
    for (const r of this.#reads.values()) {
      r.reject(
        new ServiceError("no_leader", "leadership was lost during the read"),
      );
    }
  }

  /** The leader proposes the expiry of sessions past their deadline by its clock. */
  #lastExpireProposal = 0;
  #maybeExpireSessions(): void {
    if (this.#role !== "leader" || this.store.sessionCount === 0) return;
    const now = Date.now();
    if (now - this.#lastExpireProposal < 250) return;
    if (this.store.expiredSessions(now).length === 0) return;
    this.#lastExpireProposal = now;
    this.propose({ op: "expire", now }, AbortSignal.timeout(5000)).catch(
      () => {},
    );
  }

  #takeSnapshot(): void {
    this.#snapshotting = true;
    const index = this.store.appliedIndex;
    const data = this.store.snapshot();
    const conf = this.#node.confState();
    (async () => {
      try {
        const term = this.#mem.term(index);
        await this.#log.beginSnapshot();
        await this.#snaps.save({
          lastIncludedIndex: index,
          lastIncludedTerm: term,
          configuration: {
            voters: conf.voters.map(String),
            learners: conf.learners.map(String),
          },
        }, data);
        this.#mem.createSnapshot(index, conf, data);
        // Keep some entries so slightly lagging followers avoid a snapshot transfer.
        const keep = Math.min(index, Math.max(0, index - 1000));
        if (keep > this.#mem.firstIndex()) this.#mem.compact(keep);
        await this.#log.compactPrefix(Math.min(keep, this.#log.lastIndex));
        this.#snapshotIndex = index;
        this.metricsRegistry.snapshots.inc();
      } catch (e) {
        console.error(
          `raft node ${this.#cfg.id}: snapshot at ${index} failed: ${
            e instanceof Error ? e.message : e
          }`,
        );
      } finally {
        this.#snapshotting = false;
      }
    })();
  }

  // ---- peers ----

  async #listen(): Promise<void> {
    this.#server = listenTcp({
      set: raftMessageSet,
      hostname: this.#cfg.listen.hostname,
      port: this.#cfg.listen.port,
      secret: this.#cfg.secret,
      handlers: {
        onMessage: (env) => {
          if (this.#stopped) return;
          const m = env.message as Message;
          this.metricsRegistry.messagesReceived.inc({ type: m.type });
          try {
            this.#node.step(m);
          } catch (e) {
            if (!isRaftError(e)) throw e;
          }
          this.#drive();
        },
        onError: () => {},
      },
    });
    await Promise.resolve();
  }

  #send(m: Message): void {
    let client = this.#peers.get(m.to);
    if (!client) {
      const addr = this.#addresses.get(m.to);
      if (!addr) return; // unknown peer: raft retries once it learns the address
      const [hostname, port] = splitHostPort(addr.peer);
      client = new ReconnectingClient({ hostname, port }, {
        set: raftMessageSet,
        secret: this.#cfg.secret,
        backoff: { initialMs: 50, maxMs: 1000 },
        onFrameSent: (kind, wire, whole) => {
          const type = kind.slice("raft.".length);
          this.metricsRegistry.bytesSent.inc({ type }, wire);
          if (whole > wire) {
            this.metricsRegistry.bytesSaved.inc({ type }, whole - wire);
          }
        },
      });
      this.#peers.set(m.to, client);
    }
    const conn = client.current;
    // Raft tolerates loss: while a peer is unreachable its messages are dropped, not queued.
    if (!conn) return;
    const type = typeByName.get(m.type)!;
    this.metricsRegistry.messagesSent.inc({ type: m.type });
    // deno-lint-ignore no-explicit-any
    conn.send(type, m as any).catch(() => {});
  }

  #learnAddressesFromStore(): void {
    for (const kv of this.store.range(MEMBER_PREFIX, undefined, 10_000)) {
      const id = Number(kv.key.slice(MEMBER_PREFIX.length));
      try {
        const v = JSON.parse(new TextDecoder().decode(kv.value)) as PeerAddress;
        if (id && !this.#cfg.members.has(id) && typeof v.peer === "string") {
          this.#addresses.set(id, v);
        }
      } catch { /* not an address record */ }
    }
  }
}

function splitHostPort(addr: string): [string, number] {
  const i = addr.lastIndexOf(":");
  return [addr.slice(0, i), Number(addr.slice(i + 1))];
}

async function readHardState(dir: string): Promise<HardState> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(join(dir, "hardstate"));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      return { term: 0, vote: 0, commit: 0 };
    }
    throw e;
  }
  const { payload } = openEnvelope(bytes, HARD_STATE_KIND, [1]);
  const hs = JSON.parse(new TextDecoder().decode(payload)) as HardState;
  if (
    ![hs.term, hs.vote, hs.commit].every((n) =>
      Number.isSafeInteger(n) && n >= 0
    )
  ) {
    throw new ServiceError("internal", "hardstate file holds invalid numbers");
  }
  return hs;
}

async function writeHardState(dir: string, hs: HardState): Promise<void> {
  await writeFileAtomic(
    join(dir, "hardstate"),
    sealEnvelope(
      HARD_STATE_KIND,
      1,
      new TextEncoder().encode(JSON.stringify(hs)),
    ),
  );
}
