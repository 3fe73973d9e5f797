/**
 * One replica of a replicated state machine: the thin I/O shell around
 * packages/raft's pure core. It owns the timers (ticks), the disk
 * (storage's segmented log with group commit, the snapshot store, the
 * hard-state file) and the sockets (transport's TCP RPC between peers),
 * and feeds the core's Ready through them in the order the core demands:
 * persist, then send, then apply. What is replicated is the caller's
 * {@link CommandStateMachine}: the KV store of apps/kv, the GFS master's
 * metadata in apps/gfs.
 */
import { defineMessage } from "@strata/codec";
import {
  type ClockGuardOptions,
  type ClockVerdict,
  type ConfChange,
  type ConfState,
  decodeAnyConfChange,
  type Entry,
  type HardState,
  isRaftError,
  MemoryStorage,
  type Message,
  type RaftEvent,
  type RaftStats,
  RawNode,
  type Ready,
  type Storage,
} from "@strata/raft";
import { realTimers, type Timers } from "@strata/transport";
import { z } from "zod";
import type { CommandStateMachine } from "./command_state_machine.ts";
import { DiskReplicaStorage } from "./disk_replica_storage.ts";
import {
  type MemberAddresses,
  memberAddressesSchema,
} from "./member_addresses_file.ts";
import type { PlantedBug } from "./planted_bugs.ts";
import type {
  PeerTransport,
  ReplicaPorts,
  ReplicaStorage,
} from "./replica_ports.ts";
import { ReplicationError } from "./replication_error.ts";
import { ReplicationMetrics } from "./replication_metrics.ts";
import { type SiteStatus, TcpPeerTransport } from "./tcp_peer_transport.ts";
import { noPeerTransport } from "./no_peer_transport.ts";

export { splitHostPort } from "./tcp_peer_transport.ts";

/** Addresses of one member. */
export interface PeerAddress {
  /** Raft TCP address, host:port. */
  peer: string;
  /** The member's HTTP address, host:port, for leader hints. */
  http?: string;
}

/** Configuration of a replica. */
export interface ReplicatedNodeConfig {
  /** This node's id (> 0). */
  id: number;
  /** The initial members (this node included), id → addresses. */
  members: Map<number, PeerAddress>;
  /** Data directory (locked to this process). */
  dataDir: string;
  /**
   * Host and port the raft TCP server binds. Optional for a group whose
   * only member is this node: without it the node binds no port and
   * commits an entry once it is durable on its own disk (no network);
   * adding a member then fails with `bad_request` until it is restarted
   * with a port.
   */
  listen?: { hostname: string; port: number };
  /** Start as a new member of an existing cluster (no bootstrap). */
  join?: boolean;
  /** Milliseconds per raft tick (default 100). */
  tickMs?: number;
  /** Ticks without a leader before campaigning (default 10: 1 s at 100 ms). */
  electionTicks?: number;
  /**
   * Ticks between two heartbeats of a leader (default: a fifth of
   * `electionTicks`, at least 1: 2, i.e. every 200 ms at 100 ms a tick).
   * A follower campaigns only after `electionTicks` (randomized up to
   * twice that) without hearing from its leader, and the lease lasts
   * `electionTicks − 2` ticks from a heartbeat's send time, so five rounds
   * per election timeout keep both with room to spare; a heartbeat every
   * tick, as before, cost every idle group about twice the wake-ups (the
   * leader's heartbeats and its followers' answers) for no promise.
   */
  heartbeatTicks?: number;
  /** Take a snapshot after this many applied entries (default 100,000, as etcd's --snapshot-count). */
  snapshotEntries?: number;
  /** Entries kept behind a snapshot so slightly lagging followers avoid a transfer (default 1,000). */
  snapshotCatchUpEntries?: number;
  /** Snapshot bytes per InstallSnapshot message (default: raft's, 64 KiB). */
  snapshotChunkBytes?: number;
  /** Shared secret for peer authentication (HMAC in the handshake). */
  secret?: string;
  /**
   * TLS on peer connections (both ways): this node's certificate and key
   * (PEM texts) for its listener, and the roots (PEM texts) its peers'
   * certificates must chain to. Every node of a cluster needs TLS or none.
   */
  tls?: { cert: string; key: string; caCerts: string[] };
  /** Log segment size in bytes (default 64 MiB). */
  segmentBytes?: number;
  /** Where to count raft traffic and latencies (default: a fresh registry). */
  metrics?: ReplicationMetrics;
  /** Name used in log lines (default "raft node <id>"). */
  name?: string;
  /**
   * The clocks (a port, so tests can skew them): `monotonic` ms (default
   * `performance.timeOrigin + performance.now()`) measures the lease and
   * tick gaps; `wall` ms since the epoch (default `Date.now()`) is checked
   * against it and exchanged with peers by the clock guard.
   */
  clock?: NodeClock;
  /** Bounds of the clock guard (default: its defaults), or `false` to turn it off. */
  clockGuard?: ClockGuardOptions | false;
  /**
   * This member's site (data center) label. Members announce it to their
   * peers; a leader then sends each remote site's appends as one packed
   * message through a relay member of that site (see TcpPeerTransport).
   */
  site?: string;
  /** Relaying to remote sites: off with `enabled: false`; timeouts in ms (see SiteRouter). */
  relay?: { enabled?: boolean; timeoutMs?: number; directMs?: number };
}

/** The two clocks a replica reads. */
export interface NodeClock {
  /** Monotonic milliseconds (never steps; keeps running while the process is stopped). */
  monotonic(): number;
  /** Wall-clock milliseconds since the epoch. */
  wall(): number;
}

/** The system clocks. */
export const systemClock: NodeClock = {
  monotonic: () => performance.timeOrigin + performance.now(),
  wall: () => Date.now(),
};

/** The lease and clock part of {@link ReplicaStatus}. */
export interface LeaseStatus {
  /** True when a lease read would be answered from the lease right now. */
  valid: boolean;
  /** Why not. */
  reason?: string;
  /** True when the clock guard refuses lease reads (local clocks disagree, or the leader has no quorum of peers with trusted clocks). */
  clockSuspect: boolean;
  /** The clock guard's findings (absent when the guard is off). */
  clock?: ClockVerdict;
}

/** Read consistency: linearizable (ReadIndex), leader lease, or local. */
export type ReadConsistency = "linearizable" | "lease" | "stale";

/** A point-in-time view of a replica. */
export interface ReplicaStatus {
  /** This replica's id. */
  id: number;
  /** Raft role: "follower", "preCandidate", "candidate" or "leader". */
  role: string;
  /** Current raft term. */
  term: number;
  /** Leader id (0 = unknown). */
  leader: number;
  /** Leader's HTTP address when known. */
  leaderHttp?: string;
  /** Highest log index known to be committed. */
  commitIndex: number;
  /** Highest log index applied to the state machine. */
  appliedIndex: number;
  /** First index still in the log (earlier entries were compacted into a snapshot). */
  firstIndex: number;
  /** Index of the last log entry. */
  lastIndex: number;
  /** Index the latest snapshot covers (0 = none). */
  snapshotIndex: number;
  /** Bytes of the on-disk log (entries after the last compaction). */
  logBytes: number;
  /** The read lease and the clock guard's verdict (always set by a replica; optional for stand-ins). */
  lease?: LeaseStatus;
  /** Site, remote sites and their relays (members started with a site). */
  site?: SiteStatus;
}

/** One member of the configuration. */
export interface ReplicaMember {
  /** The member's node id. */
  id: number;
  /** Voter, or non-voting learner that only receives the log. */
  role: "voter" | "learner";
  /** Raft TCP address, host:port, when known. */
  peerAddress?: string;
  /** HTTP address, host:port, when known. */
  httpAddress?: string;
}

/** What a log entry's data holds: the proposer's request id and the command. */
const Proposal = defineMessage(
  "replication.proposal",
  z.object({
    id: z.string().max(64),
    command: z.custom<Uint8Array>((v) => v instanceof Uint8Array),
  }),
);
/**
 * The command a normal log entry of a {@link ReplicatedNode} carries (its
 * data is the proposer's request id and the command): what a client learner
 * following the committed stream applies.
 * @throws when `data` is not a replicated proposal.
 */
export function proposalCommand(data: Uint8Array): Uint8Array {
  return Proposal.decode(data).command;
}

interface Waiter<R> {
  resolve(r: R): void;
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
      ReplicatedNodeConfig,
      | "tickMs"
      | "electionTicks"
      | "snapshotEntries"
      | "snapshotCatchUpEntries"
      | "segmentBytes"
      | "name"
    >
  >
  & ReplicatedNodeConfig;

/** Why a replica without a raft port cannot run in, or grow, a group with other members. */
function portlessError(
  id: number,
  others: number[] | string,
): ReplicationError {
  const who = typeof others === "string"
    ? others
    : `its group has member(s) ${others.join(", ")}`;
  return new ReplicationError(
    "bad_request",
    `replica ${id} runs without a raft port (no listen address) but ${who}: restart it with a listen address (and its peer address in the member list) first`,
  );
}

/** This node's raft address as peers dial it (its entry, else a concrete --listen). */
function advertisedPeer(cfg: ReplicatedNodeConfig): string | undefined {
  const own = cfg.members.get(cfg.id)?.peer;
  if (own !== undefined) return own;
  if (cfg.listen === undefined) return undefined;
  const { hostname, port } = cfg.listen;
  if (port === 0 || hostname === "0.0.0.0" || hostname === "::") {
    return undefined;
  }
  return hostname.includes(":")
    ? `[${hostname}]:${port}`
    : `${hostname}:${port}`;
}

/**
 * A running replica. Create with {@link ReplicatedNode.start}; every
 * replica of a group runs the same state machine; `propose` on any of them
 * (followers forward to the leader) resolves with the result `apply`
 * returned once the command is committed and applied here.
 */
export class ReplicatedNode<R> {
  /** The replicated state machine. */
  readonly machine: CommandStateMachine<R>;
  /** Prometheus metrics of this replica. */
  readonly metrics: ReplicationMetrics;

  readonly #cfg: ResolvedConfig;
  readonly #storage: ReplicaStorage;
  readonly #transport: PeerTransport;
  readonly #timers: Timers;
  readonly #bug: PlantedBug | undefined;
  readonly #mem: MemoryStorage;
  readonly #node: RawNode;
  readonly #addresses: Map<number, PeerAddress>;
  /** What the members file holds (learned addresses already on disk). */
  #savedMembers: MemberAddresses = {};
  #cancelTick: (() => void) | undefined;
  readonly #clock: NodeClock;
  #tickOrigin = 0;
  #ticksDone = 0;
  #driving = false;
  #again = false;
  #stopped = false;
  #closed = false;
  #failure: unknown;
  /**
   * Distinguishes this life of the replica in request ids: after a restart
   * the log replays entries proposed in an earlier life, and their ids must
   * not match the waiters of new proposals (nor old ReadIndex answers new
   * reads).
   */
  readonly #life: string;
  #nextRequest = 0;
  readonly #waiters = new Map<string, Waiter<R>>();
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
  readonly #leaderListeners = new Set<(lead: number, role: string) => void>();
  readonly #tickListeners = new Set<() => void>();
  readonly #failureListeners = new Set<(error: unknown) => void>();
  #batch: Array<{ data: Uint8Array; requestId: string }> = [];
  /**
   * This replica's proposals awaiting their result, by their encoded
   * bytes: the leader applies the very array it proposed, so it need not
   * decode it again. Removed with the waiter (a plain map: a WeakMap of
   * short-lived keys costs the garbage collector more than it saves).
   */
  readonly #ownProposals = new Map<
    Uint8Array,
    { id: string; command: Uint8Array }
  >();

  private constructor(
    cfg: ResolvedConfig,
    machine: CommandStateMachine<R>,
    metrics: ReplicationMetrics,
    ports: Required<Pick<ReplicaPorts, "storage" | "transport" | "timers">>,
    bug: PlantedBug | undefined,
    random: () => number,
    mem: MemoryStorage,
    node: RawNode,
    hard: HardState,
    snapshotIndex: number,
  ) {
    this.#cfg = cfg;
    this.machine = machine;
    this.metrics = metrics;
    this.#storage = ports.storage;
    this.#transport = ports.transport;
    this.#timers = ports.timers;
    this.#bug = bug;
    this.#life = Math.floor(random() * 2 ** 48).toString(36);
    this.#mem = mem;
    this.#node = node;
    this.#hard = hard;
    this.#snapshotIndex = snapshotIndex;
    this.#addresses = new Map(cfg.members);
    this.#clock = cfg.clock ?? systemClock;
  }

  /**
   * Opens (or creates) the data directory, restores the newest snapshot
   * into `machine`, loads the log tail (re-applied as it commits), binds
   * the raft port and starts ticking. `ports` replace the production edges
   * (the simulator's disk, network and timers); leave it out in production.
   * @throws StorageError `locked` when another process owns the directory.
   */
  static async start<R>(
    config: ReplicatedNodeConfig,
    machine: CommandStateMachine<R>,
    ports: ReplicaPorts = {},
  ): Promise<ReplicatedNode<R>> {
    const cfg: ResolvedConfig = {
      tickMs: 100,
      electionTicks: 10,
      snapshotEntries: 100_000,
      snapshotCatchUpEntries: 1000,
      segmentBytes: 64 * 2 ** 20,
      name: `raft node ${config.id}`,
      // An option given as undefined keeps its default.
      ...Object.fromEntries(
        Object.entries(config).filter(([, v]) => v !== undefined),
      ) as ReplicatedNodeConfig,
    };
    const metrics = cfg.metrics ?? new ReplicationMetrics();
    const storage = ports.storage ??
      await DiskReplicaStorage.open({
        dataDir: cfg.dataDir,
        segmentBytes: cfg.segmentBytes,
      });
    const listen = cfg.listen;
    const portless = listen === undefined && ports.transport === undefined;
    if (portless) {
      const others = [...cfg.members.keys()].filter((id) => id !== cfg.id);
      if (others.length > 0 || cfg.join) {
        await storage.close().catch(() => {});
        throw portlessError(cfg.id, cfg.join ? "it joins a group" : others);
      }
    }
    const transport = ports.transport ??
      (listen === undefined ? noPeerTransport : new TcpPeerTransport({
        listen,
        secret: cfg.secret,
        tls: cfg.tls,
        metrics,
        name: cfg.name,
        id: cfg.id,
        advertise: advertisedPeer(cfg),
        site: cfg.site,
        relay: cfg.relay,
      }));
    const timers = ports.timers ?? realTimers;
    const bug = ports.unsafePlantedBug;
    const random = ports.random ?? Math.random;
    try {
      const recovered = await storage.recover();
      const mem = new MemoryStorage();
      const snapshot = recovered.snapshot;
      const snapIndex = snapshot?.meta.index ?? 0;
      if (snapshot) {
        machine.restore(snapshot.data, snapIndex);
        mem.applySnapshot(snapshot);
      }
      if (recovered.entries.length > 0) mem.append(recovered.entries);
      const hard = recovered.hardState;
      const commit = Math.min(
        Math.max(hard.commit, snapIndex),
        mem.lastIndex(),
      );
      const hs = { ...hard, commit };
      mem.setHardState(hs);
      const fresh = snapIndex === 0 && mem.lastIndex() === 0 && hard.term === 0;
      const clock = cfg.clock ?? systemClock;
      // The planted bug: no clock and no guard, so raft counts the lease in ticks.
      const ticksOnly = bug === "lease_counts_ticks";
      const node = new RawNode({
        ...(ticksOnly ? {} : { clock: clock.monotonic }),
        wallClock: clock.wall,
        tickMs: cfg.tickMs,
        clockGuard: cfg.clockGuard === false || ticksOnly
          ? undefined
          : cfg.clockGuard ?? {},
        id: cfg.id,
        storage: mem,
        peers: fresh && !cfg.join
          ? [...cfg.members.keys()].sort((a, b) => a - b)
          : undefined,
        electionTick: cfg.electionTicks,
        heartbeatTick: cfg.heartbeatTicks ??
          Math.max(1, Math.floor(cfg.electionTicks / 5)),
        random,
        applied: snapIndex,
        preVote: true,
        checkQuorum: true,
        readOnly: "safe",
        maxSizePerMsg: 1 << 20,
        maxInflightMsgs: 256,
        maxUncommittedEntriesSize: 64 << 20,
        ...(cfg.snapshotChunkBytes
          ? { snapshotChunkBytes: cfg.snapshotChunkBytes }
          : {}),
        ...(bug === "joint_commit_old_quorum"
          ? { unsafe: { jointCommitOutgoingOnly: true } }
          : bug === "vote_without_log_check"
          ? { unsafe: { voteWithoutLogCheck: true } }
          : bug === "commit_old_term_entries"
          ? { unsafe: { commitPreviousTermEntries: true } }
          : {}),
      });
      if (portless) {
        // Reopened without a port after members were added: refuse rather
        // than run a replica that can never reach its group.
        const cs = node.confState();
        const others = [
          ...cs.voters,
          ...cs.learners,
          ...(cs.votersOutgoing ?? []),
        ].filter((id) => id !== cfg.id);
        if (others.length > 0) throw portlessError(cfg.id, others);
      }
      const n = new ReplicatedNode(
        cfg,
        machine,
        metrics,
        { storage, transport, timers },
        bug,
        random,
        mem,
        node,
        hs,
        snapIndex,
      );
      for (const [id, a] of Object.entries(recovered.members)) {
        n.setAddress(Number(id), a);
      }
      n.#savedMembers = recovered.members;
      await transport.listen(
        (m) => n.#receive(m),
        (id) => n.#addresses.get(id)?.peer,
        (id, peer) => n.#announced(id, peer),
      );
      n.#tickOrigin = clock.monotonic();
      n.#scheduleTick();
      n.#drive();
      return n;
    } catch (e) {
      await transport.close().catch(() => {});
      await storage.close().catch(() => {});
      throw e;
    }
  }

  /** The last (up to 1,000) structured raft events: roles, votes, conf changes. */
  events(): readonly RaftEvent[] {
    return this.#events;
  }

  /** The raft TCP port actually bound. */
  get peerPort(): number {
    return this.#transport.port;
  }

  /** The node's id. */
  get id(): number {
    return this.#cfg.id;
  }

  /** True while this replica is the leader. */
  get isLeader(): boolean {
    return this.#role === "leader";
  }

  /** The leader's id (0 = none known). */
  get leader(): number {
    return this.#lead;
  }

  /** Addresses of member `id`, when known. */
  address(id: number): PeerAddress | undefined {
    return this.#addresses.get(id);
  }

  /** Records the addresses of a member (learned from the log, e.g. on join). */
  setAddress(id: number, address: PeerAddress): void {
    if (id === this.#cfg.id || this.#cfg.members.has(id)) return;
    this.#addresses.set(id, address);
  }

  /**
   * The raft log this node holds in memory, for reading only: a
   * `CommitStreamHub` serves client learners the committed entries (or the
   * snapshot) from it.
   */
  raftLog(): Storage {
    return this.#mem;
  }

  /** True while the leader's lease (check-quorum) is valid here. */
  leaseValid(): boolean {
    return this.#role === "leader" && this.#node.leaseValid();
  }

  /**
   * Calls `listener(leader, role)` whenever this replica's view of the
   * leader or its own role changes; returns the unsubscribe function.
   */
  onLeaderChange(listener: (lead: number, role: string) => void): () => void {
    this.#leaderListeners.add(listener);
    return () => this.#leaderListeners.delete(listener);
  }

  /**
   * Calls `listener()` on every tick timer callback (every `tickMs` while
   * running), after the raft ticks due: for periodic work that can ride on
   * the wake-up the replica makes anyway instead of arming its own timer
   * (each timer wake-up of an idle Deno process costs ~0.1 ms of CPU).
   * Returns the unsubscribe function.
   */
  onTick(listener: () => void): () => void {
    this.#tickListeners.add(listener);
    return () => this.#tickListeners.delete(listener);
  }

  /**
   * Calls `listener(error)` once, when a failed write halts this replica
   * (at once if it already has): the process should then exit, so that a
   * supervisor restarts it and it recovers from what is durable, as etcd
   * exits on a failed fsync. Returns the unsubscribe function.
   */
  onFailure(listener: (error: unknown) => void): () => void {
    if (this.#failure !== undefined) {
      const e = this.#failure;
      queueMicrotask(() => listener(e));
      return () => {};
    }
    this.#failureListeners.add(listener);
    return () => this.#failureListeners.delete(listener);
  }

  /** Counters of the raft core (echo bytes saved, proposals dropped, ...). */
  raftStats(): RaftStats {
    return this.#node.status().stats;
  }

  /** Stops ticking, closes sockets and files, releases the directory. */
  async stop(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#halt(new ReplicationError("unavailable", "the node is stopping"));
    await this.#transport.close().catch(() => {});
    while (this.#driving) await this.#sleep(5);
    await this.#storage.close();
  }

  /**
   * Stops ticking, stepping and answering, and fails every waiting request
   * with `err`. After a failed write (fsync) this is where the node ends:
   * it can no longer tell what its disk holds, so, as etcd panics, it
   * stops rather than go on voting and acknowledging; restarting the
   * process recovers it from what is durable.
   */
  #halt(err: ReplicationError): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#cancelTick?.();
    for (const w of this.#waiters.values()) w.reject(err);
    for (const r of this.#reads.values()) r.reject(err);
    this.#waiters.clear();
    this.#reads.clear();
  }

  /** A write failed: record why, halt, and close the sockets (the files stay for {@link stop}). */
  #fail(e: unknown): void {
    if (this.#failure !== undefined) return;
    this.#failure = e;
    console.error(
      `${this.#cfg.name}: fatal: ${
        e instanceof Error ? e.message : e
      }; stopped (restart the process to recover from its disk)`,
    );
    this.#halt(new ReplicationError("unavailable", "the node failed"));
    this.#transport.close().catch(() => {});
    for (const l of this.#failureListeners) l(e);
    this.#failureListeners.clear();
  }

  /**
   * Replicates `command` and resolves with what the state machine's
   * `apply` returned for it here. Proposals made in the same turn of the
   * event loop travel as one batch.
   * @throws ReplicationError `no_leader` (nothing was proposed), `timeout`
   *   (the signal fired; the command may still commit), `unavailable`.
   */
  propose(command: Uint8Array, signal: AbortSignal): Promise<R> {
    this.#assertRunning();
    const requestId = `${this.#cfg.id}.${this.#life}.${++this.#nextRequest}`;
    const data = Proposal.encode({ id: requestId, command });
    this.#ownProposals.set(data, { id: requestId, command });
    return new Promise<R>((resolve, reject) => {
      const done = () => {
        this.#ownProposals.delete(data);
        this.#waiters.delete(requestId);
        this.#proposedAt.delete(requestId);
        signal.removeEventListener("abort", onAbort);
      };
      const onAbort = () => {
        done();
        reject(
          new ReplicationError(
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
      this.#proposedAt.set(requestId, this.#clock.monotonic());
      this.metrics.proposals.inc();
      this.#batch.push({ data, requestId });
      if (this.#batch.length === 1) {
        queueMicrotask(() => this.#flushProposals());
      }
    });
  }

  /**
   * Waits until this replica's state is at least as new as `consistency`
   * requires: `linearizable` runs a ReadIndex round through the leader,
   * `lease` trusts a leader's valid lease, `stale` returns at once.
   * @throws ReplicationError `no_leader`, `timeout`.
   */
  async readBarrier(
    consistency: ReadConsistency,
    signal: AbortSignal,
  ): Promise<void> {
    this.#assertRunning();
    if (consistency === "stale") return;
    if (consistency === "lease") {
      if (this.leaseValid()) {
        this.metrics.leaseReads.inc({ served: "lease" });
        await this.#waitApplied(this.#node.status().commit, signal);
        return;
      }
      // No lease here (a follower, a lapsed or voided lease, a suspect
      // clock): the read goes through ReadIndex instead.
      this.metrics.leaseReads.inc({ served: "read_index" });
      if (this.isLeader && this.#clockSuspect()) {
        this.metrics.clockRefusals.inc();
      }
    }
    if (this.#lead === 0) {
      throw new ReplicationError(
        "no_leader",
        "no leader is known right now; retry shortly",
      );
    }
    if (this.#bug === "read_index_skips_quorum" && this.isLeader) {
      // The planted bug: "we are the leader, so our commit index is current".
      await this.#waitApplied(this.#node.status().commit, signal);
      return;
    }
    const ctx = `${this.#cfg.id}.${this.#life}.r${++this.#nextRead}`;
    const index = await new Promise<number>((resolve, reject) => {
      const onAbort = () => {
        this.#reads.delete(ctx);
        reject(
          new ReplicationError(
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

  /** Role, term, leader and log positions of this replica. */
  status(): ReplicaStatus {
    const s = this.#node.status();
    const site = this.#transport.siteStatus?.();
    return {
      id: this.#cfg.id,
      role: s.role,
      term: s.term,
      leader: s.lead,
      leaderHttp: this.#addresses.get(s.lead)?.http,
      commitIndex: s.commit,
      appliedIndex: this.machine.appliedIndex,
      firstIndex: this.#mem.firstIndex(),
      lastIndex: s.lastIndex,
      snapshotIndex: this.#snapshotIndex,
      logBytes: this.#storage.byteSize,
      lease: this.leaseStatus(),
      ...(site ? { site } : {}),
    };
  }

  /** The read lease and what the clock guard thinks of the clocks. */
  leaseStatus(): LeaseStatus {
    const ls = this.#node.leaseState();
    const clock = this.#node.clockVerdict();
    return {
      valid: this.#role === "leader" && ls.valid,
      ...(ls.reason !== undefined ? { reason: ls.reason } : {}),
      clockSuspect: this.#clockSuspect(),
      ...(clock ? { clock } : {}),
    };
  }

  /**
   * True when the clock guard is what keeps this node from a lease: its
   * local clocks disagree, or (on the leader) peers' clocks were measured
   * out of bounds so that no quorum of trusted clocks remains.
   */
  #clockSuspect(): boolean {
    const v = this.#node.clockVerdict();
    if (!v) return false;
    if (!v.localOk) return true;
    if (this.#role !== "leader") return false;
    const voters = this.#node.confState().voters;
    const measuredBad =
      voters.filter((id) =>
        id !== this.#cfg.id && v.peers[id] !== undefined &&
        !v.peers[id]!.trusted && v.peers[id]!.rate !== undefined
      ).length;
    // Out-of-bounds peers leave fewer than a quorum that could be trusted.
    return voters.length - measuredBad < Math.floor(voters.length / 2) + 1;
  }

  /** Voters and learners with their known addresses, by id. */
  members(): ReplicaMember[] {
    const cs = this.#node.confState();
    const info = (id: number, role: "voter" | "learner"): ReplicaMember => {
      const a = this.#addresses.get(id);
      return {
        id,
        role,
        ...(a?.peer ? { peerAddress: a.peer } : {}),
        ...(a?.http ? { httpAddress: a.http } : {}),
      };
    };
    return [
      ...cs.voters.map((id) => info(id, "voter")),
      ...cs.learners.map((id) => info(id, "learner")),
    ].sort((a, b) => a.id - b.id);
  }

  /** The current configuration. */
  confState(): ConfState {
    return this.#node.confState();
  }

  /** A {@link ReplicationError} `no_leader` carrying the leader hint. */
  notLeader(message: string): ReplicationError {
    return new ReplicationError("no_leader", message, {
      leader: this.#lead,
      leaderHttp: this.#addresses.get(this.#lead)?.http,
    });
  }

  /**
   * Proposes a membership change (on the leader) and waits until it is
   * applied here: `addLearner`, `addNode` (add or promote a voter),
   * `removeNode`. Record the new member's addresses first with
   * {@link setAddress} (or through the log) so the leader can reach it.
   * @throws ReplicationError `no_leader`, `conflict` (refused by raft,
   *   e.g. another change in flight), `timeout`.
   */
  async changeConf(
    type: "addLearner" | "addNode" | "removeNode",
    nodeId: number,
    signal: AbortSignal,
  ): Promise<void> {
    if (this.#node.status().role !== "leader") {
      throw this.notLeader("membership changes go to the leader");
    }
    this.#assertCanGrow([{ type, nodeId }]);
    try {
      this.#node.proposeConfChange({ type, nodeId });
    } catch (e) {
      if (isRaftError(e)) {
        throw new ReplicationError(
          "conflict",
          `membership change refused: ${e.message}`,
        );
      }
      throw e;
    }
    this.#drive();
    const want = (c: ConfState) =>
      type === "removeNode"
        ? !c.voters.includes(nodeId) && !c.learners.includes(nodeId)
        : type === "addLearner"
        ? c.learners.includes(nodeId) || c.voters.includes(nodeId)
        : c.voters.includes(nodeId);
    await this.#waitConf(want, signal);
  }

  /**
   * Changes several members at once through a joint configuration (raft's
   * ConfChangeV2, left automatically): e.g. add two voters and remove two
   * in one step, which one-at-a-time changes cannot do without passing
   * through an even-sized or weaker configuration. `addresses` of the new
   * members travel in the change's context, so every replica (and the new
   * members themselves, when they replay the log) learns them from the log;
   * they are kept in the data directory. Waits until the final
   * configuration is applied here.
   * @throws ReplicationError `no_leader`, `conflict` (refused: another
   *   change in flight), `bad_request` (empty, invalid, or leaving no
   *   voter), `timeout`.
   */
  async changeMembers(
    changes: ConfChange[],
    addresses: Record<number, PeerAddress>,
    signal: AbortSignal,
  ): Promise<void> {
    if (!this.isLeader) {
      throw this.notLeader("membership changes go to the leader");
    }
    this.#assertCanGrow(changes);
    const context: MemberAddresses = {};
    for (const [id, a] of Object.entries(addresses)) {
      context[id] = a.http ? { peer: a.peer, http: a.http } : { peer: a.peer };
    }
    const checked = memberAddressesSchema.safeParse(context);
    if (changes.length === 0 || !checked.success) {
      throw new ReplicationError(
        "bad_request",
        changes.length === 0
          ? "no membership change given"
          : `invalid member addresses: ${checked.error?.issues[0]?.message}`,
      );
    }
    const raft = this.#node.raft;
    if (raft.joint() || raft.pendingConfIndex > raft.log.applied) {
      throw new ReplicationError(
        "conflict",
        "another membership change is still being applied; retry shortly",
      );
    }
    // The configuration once the joint one is left.
    const cs = this.#node.confState();
    const voters = new Set(cs.voters);
    const learners = new Set(cs.learners);
    for (const c of changes) {
      if (c.type === "addNode") {
        voters.add(c.nodeId);
        learners.delete(c.nodeId);
      } else if (c.type === "addLearner") {
        voters.delete(c.nodeId);
        learners.add(c.nodeId);
      } else {
        voters.delete(c.nodeId);
        learners.delete(c.nodeId);
      }
    }
    if (voters.size === 0) {
      // Raft would turn it into an empty entry: say so instead of timing out.
      throw new ReplicationError(
        "bad_request",
        "the change would leave no voter",
      );
    }
    for (const [id, a] of Object.entries(checked.data)) {
      this.setAddress(Number(id), a);
    }
    const same = (a: Set<number>, b: number[]) =>
      a.size === b.length && b.every((x) => a.has(x));
    try {
      this.#node.proposeConfChangeV2({
        changes,
        context: new TextEncoder().encode(JSON.stringify(checked.data)),
      });
    } catch (e) {
      if (isRaftError(e, "invalid_config")) {
        throw new ReplicationError("bad_request", e.message);
      }
      if (isRaftError(e)) {
        throw new ReplicationError(
          "conflict",
          `membership change refused: ${e.message}`,
        );
      }
      throw e;
    }
    this.#drive();
    await this.#waitConf(
      (now) =>
        !now.votersOutgoing && same(voters, now.voters) &&
        same(learners, now.learners),
      signal,
    );
  }

  /** Refuses to add a member to a replica that has no raft port to reach it. */
  #assertCanGrow(changes: ConfChange[]): void {
    if (this.#transport !== noPeerTransport) return;
    const added = changes.filter((c) =>
      c.type !== "removeNode" && c.nodeId !== this.#cfg.id
    ).map((c) => c.nodeId);
    if (added.length > 0) {
      throw portlessError(this.#cfg.id, `adding ${added.join(", ")} needs one`);
    }
  }

  /**
   * Polls until the applied configuration satisfies `done`.
   * @throws ReplicationError `timeout` when `signal` aborts first.
   */
  async #waitConf(
    done: (c: ConfState) => boolean,
    signal: AbortSignal,
  ): Promise<void> {
    while (!done(this.#node.confState())) {
      if (signal.aborted) {
        throw new ReplicationError(
          "timeout",
          "the membership change did not apply before the deadline (it may still)",
        );
      }
      await this.#sleep(20);
    }
  }

  /**
   * Hands leadership to `to` (default: the most caught-up other voter)
   * and waits until it leads.
   * @returns the new leader's id.
   * @throws ReplicationError `no_leader` (this is not the leader),
   *   `conflict` (nobody to hand to), `bad_request`, `timeout`.
   */
  async transferLeadership(
    to: number | undefined,
    signal: AbortSignal,
  ): Promise<number> {
    if (this.#node.status().role !== "leader") {
      throw this.notLeader("only the leader can hand over leadership");
    }
    const s = this.#node.status();
    const target = to ?? Object.entries(s.progress ?? {})
      .filter(([id, p]) => Number(id) !== this.#cfg.id && !p.learner)
      .sort((a, b) => b[1].match - a[1].match)[0]?.[0];
    if (target === undefined) {
      throw new ReplicationError(
        "conflict",
        "no other voter to hand leadership to",
      );
    }
    const targetId = Number(target);
    if (!s.confState.voters.includes(targetId)) {
      throw new ReplicationError(
        "bad_request",
        `node ${targetId} is not a voter`,
      );
    }
    this.#node.transferLeadership(targetId);
    this.#drive();
    while (this.#lead !== targetId) {
      if (signal.aborted) {
        throw new ReplicationError(
          "timeout",
          `leadership did not move to ${targetId} before the deadline`,
        );
      }
      await this.#sleep(20);
    }
    return targetId;
  }

  /** Updates the point-in-time gauges and renders the Prometheus text. */
  renderMetrics(extraGauges: Record<string, number> = {}): Promise<string> {
    const s = this.#node.status();
    this.metrics.setGauges({
      term: s.term,
      commit: s.commit,
      applied: this.machine.appliedIndex,
      isLeader: s.role === "leader" ? 1 : 0,
      echoBytesSaved: s.stats.echoBytesSaved,
      proposalsDropped: s.stats.proposalsDropped,
      tickGaps: s.stats.tickGaps,
      leaseValid: this.leaseValid() ? 1 : 0,
      clockSuspect: this.#clockSuspect() ? 1 : 0,
      ...extraGauges,
    });
    return this.metrics.render();
  }

  #flushProposals(): void {
    const batch = this.#batch;
    this.#batch = [];
    if (batch.length === 0 || this.#stopped) return;
    try {
      this.#node.proposeBatch(batch.map((p) => p.data));
    } catch (e) {
      const err = isRaftError(e, "proposal_dropped")
        ? this.notLeader("no leader is known right now; retry shortly")
        : e;
      for (const p of batch) this.#waiters.get(p.requestId)?.reject(err);
      return;
    }
    this.#drive();
  }

  // ---- the Ready loop ----

  /**
   * Runs the ticks due by the monotonic clock, not one per timer callback:
   * a stopped process or a blocked event loop misses timer callbacks, and
   * the ticks it missed are caught up here (at most two election timeouts'
   * worth: that is enough to time out an election or step a leader down).
   */
  #tick(): void {
    if (this.#stopped) return;
    if (this.#bug === "lease_counts_ticks") {
      // The planted bug: one tick per timer callback, missed ones are lost.
      this.#node.tick();
      this.#drive();
      return;
    }
    const due = Math.floor(
      (this.#clock.monotonic() - this.#tickOrigin) / this.#cfg.tickMs,
    ) - this.#ticksDone;
    const cap = 2 * this.#cfg.electionTicks;
    if (due > cap) this.#ticksDone += due - cap;
    const n = Math.min(due, cap);
    if (n > 1) this.metrics.ticksCaughtUp.inc(n - 1);
    for (let i = 0; i < n; i++) {
      this.#ticksDone++;
      this.#node.tick();
    }
    this.#drive();
  }

  /** Arms the timer for the next tick (each callback re-arms it). */
  #scheduleTick(): void {
    if (this.#stopped) return;
    this.#cancelTick = this.#timers.setTimer(this.#cfg.tickMs, () => {
      this.#scheduleTick();
      this.#tick();
      if (this.#stopped) return;
      for (const l of this.#tickListeners) {
        try {
          l();
        } catch (e) {
          console.error(`${this.#cfg.name}: tick listener failed: ${e}`);
        }
      }
    });
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((r) => this.#timers.setTimer(ms, r));
  }

  /** A planted bug's unawaited write: its failure must still stop the node. */
  #unawaited(write: Promise<void>): void {
    write.catch((e) => this.#fail(e));
  }

  #assertRunning(): void {
    if (this.#failure) {
      throw new ReplicationError(
        "unavailable",
        `the node failed: ${this.#failure}`,
      );
    }
    if (this.#stopped) {
      throw new ReplicationError("unavailable", "the node is stopped");
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
            this.#maybeSnapshot();
          }
        } while (this.#again && !this.#stopped);
      } catch (e) {
        // A disk error means this node can no longer keep its promises.
        this.#fail(e);
      } finally {
        this.#driving = false;
      }
    })();
  }

  async #handle(rd: Ready): Promise<void> {
    // 1. Persist: snapshot, entries, hard state (fsync before any message leaves).
    const storage = this.#storage;
    // The planted bug applies (and answers) before this Ready's writes.
    const early = this.#bug === "apply_before_persist" && !rd.snapshot;
    let learned = false;
    if (early) {
      for (const e of rd.committedEntries) {
        if (this.#learnFromConf(e)) learned = true;
        this.#apply(e);
      }
    }
    if (rd.snapshot) {
      await storage.installSnapshot(rd.snapshot);
      this.#mem.applySnapshot(rd.snapshot);
      this.#snapshotIndex = rd.snapshot.meta.index;
    }
    if (rd.entries.length > 0) {
      const first = rd.entries[0]!.index;
      if (first <= storage.lastIndex) await storage.truncateSuffix(first);
      if (first !== storage.lastIndex + 1) {
        throw new ReplicationError(
          "internal",
          `log gap: appending ${first} after ${storage.lastIndex}`,
        );
      }
      const started = this.#clock.monotonic();
      const written = storage.append(rd.entries);
      if (this.#bug === "ack_before_fsync") this.#unawaited(written);
      else await written;
      this.metrics.fsyncSeconds.observe(
        (this.#clock.monotonic() - started) / 1000,
      );
      this.#mem.append(rd.entries);
    }
    if (rd.hardState) {
      const hs = rd.hardState;
      // The commit index is written with a committed membership change:
      // after a restart the configuration is rebuilt from the entries up
      // to the written commit, and one that still names removed voters may
      // never elect again (the simulator found it: two of three voters
      // replaced at once, then every server restarted).
      const confCommitted = rd.committedEntries.some((e) =>
        e.type !== "normal"
      );
      if (
        hs.term !== this.#hard.term || hs.vote !== this.#hard.vote ||
        confCommitted
      ) {
        const written = storage.writeHardState(hs);
        if (this.#bug === "vote_before_fsync") this.#unawaited(written);
        else await written;
      }
      this.#hard = hs;
      this.#mem.setHardState(hs);
    }
    let leaderChanged = false;
    if (rd.softState) {
      if (rd.softState.lead !== this.#lead && rd.softState.lead !== 0) {
        this.metrics.leaderChanges.inc();
      }
      leaderChanged = rd.softState.lead !== this.#lead ||
        rd.softState.role !== this.#role;
      this.#lead = rd.softState.lead;
      this.#role = rd.softState.role;
      if (this.#role !== "leader") this.#failForwardedReadsIfLeaderless();
    }
    // 2. Send.
    for (const m of rd.messages) this.#send(m);
    this.#transport.flush?.();
    // 3. Apply.
    if (rd.snapshot) {
      this.machine.restore(rd.snapshot.data, rd.snapshot.meta.index);
    }
    for (const e of early ? [] : rd.committedEntries) {
      if (this.#learnFromConf(e)) learned = true;
      this.#apply(e);
    }
    if (learned) {
      const members = this.#learnedAddresses();
      await storage.writeMembers(members);
      this.#savedMembers = members;
    }
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
        this.metrics.elections.inc({
          outcome: ev.role === "leader" ? "won" : "started",
        });
      }
      this.#events.push(ev);
      if (this.#events.length > 1000) {
        this.#events.splice(0, this.#events.length - 1000);
      }
    }
    if (leaderChanged) {
      for (const l of this.#leaderListeners) {
        try {
          l(this.#lead, this.#role);
        } catch (e) {
          console.error(`${this.#cfg.name}: leader listener failed: ${e}`);
        }
      }
    }
  }

  /**
   * Takes a snapshot when enough entries were applied since the last one.
   * Runs after `advance()`: the raft core applies a Ready's membership
   * changes there, and a snapshot taken before would pair the state
   * machine at index n with the membership before n (the simulator found
   * servers that installed such a snapshot and never learned that they were
   * voters).
   */
  #maybeSnapshot(): void {
    if (
      !this.#snapshotting &&
      // The snapshot store keeps voters and learners only: never snapshot
      // a joint configuration (it is left within a round trip or two).
      !this.#node.confState().votersOutgoing &&
      this.machine.appliedIndex - this.#snapshotIndex >=
        this.#cfg.snapshotEntries
    ) {
      this.#takeSnapshot();
    }
  }

  /**
   * A peer announced its raft address. Used only for a member whose address
   * is unknown here: one added while this replica was down learns it from
   * the log entry it cannot acknowledge without answering that member
   * first. Known addresses (from the configuration or the log) win.
   */
  #announced(id: number, peer: string): void {
    if (id === this.#cfg.id || this.#addresses.has(id)) return;
    this.setAddress(id, { peer });
  }

  /**
   * Learns the addresses a joint membership change carries in its context.
   * @returns true when one is not yet in the members file (the leader
   *   that proposed the change already knows them in memory, but must
   *   still write them: the simulator found a leader that, restarted after
   *   a snapshot covered the change, no longer knew a learner's address).
   */
  #learnFromConf(e: Entry): boolean {
    if (e.type !== "conf") return false;
    const any = decodeAnyConfChange(e.data);
    if (any?.v !== 2 || !any.cc.context) return false;
    let parsed;
    try {
      parsed = memberAddressesSchema.safeParse(
        JSON.parse(new TextDecoder().decode(any.cc.context)),
      );
    } catch {
      return false;
    }
    if (!parsed.success) return false;
    let changed = false;
    for (const [id, a] of Object.entries(parsed.data)) {
      const n = Number(id);
      if (n === this.#cfg.id || this.#cfg.members.has(n)) continue;
      const saved = this.#savedMembers[id];
      if (saved?.peer === a.peer && saved?.http === a.http) continue;
      this.setAddress(n, a);
      changed = true;
    }
    return changed;
  }

  /** Addresses of members outside the initial list, for the members file. */
  #learnedAddresses(): MemberAddresses {
    const out: MemberAddresses = {};
    for (const [id, a] of this.#addresses) {
      if (id === this.#cfg.id || this.#cfg.members.has(id)) continue;
      out[String(id)] = a.http
        ? { peer: a.peer, http: a.http }
        : { peer: a.peer };
    }
    return out;
  }

  #apply(e: Entry): void {
    if (e.index <= this.machine.appliedIndex) return;
    if (e.type !== "normal" || e.data.length === 0) {
      this.machine.skip(e.index);
      return;
    }
    let proposal: { id: string; command: Uint8Array } | undefined = this
      .#ownProposals.get(e.data);
    try {
      proposal ??= Proposal.decode(e.data);
    } catch (err) {
      // Entries are checksummed on disk and on the wire, so this is a log
      // written in another format: stop rather than silently skip data.
      throw new ReplicationError(
        "internal",
        `entry ${e.index} is not a replicated proposal (a log from another strata version?): ${
          err instanceof Error ? err.message : err
        }`,
      );
    }
    const result = this.machine.apply(e.index, proposal.command);
    const waiter = this.#waiters.get(proposal.id);
    if (waiter) {
      const t = this.#proposedAt.get(proposal.id);
      if (t !== undefined) {
        this.metrics.commitSeconds.observe(
          (this.#clock.monotonic() - t) / 1000,
        );
      }
      waiter.resolve(result);
    }
  }

  #waitApplied(index: number, signal: AbortSignal): Promise<void> {
    if (this.machine.appliedIndex >= index) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const entry = { index, resolve: () => resolve() };
      this.#applyWaits.push(entry);
      signal.addEventListener("abort", () => {
        this.#applyWaits = this.#applyWaits.filter((w) => w !== entry);
        reject(
          new ReplicationError(
            "timeout",
            "the deadline passed before this node caught up to the read point",
          ),
        );
      }, { once: true });
    });
  }

  #releaseApplyWaits(): void {
    if (this.#applyWaits.length === 0) return;
    const applied = this.machine.appliedIndex;
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
        new ReplicationError(
          "no_leader",
          "leadership was lost during the read",
        ),
      );
    }
  }

  #takeSnapshot(): void {
    this.#snapshotting = true;
    const index = this.machine.appliedIndex;
    const data = this.machine.snapshot();
    const conf = this.#node.confState();
    (async () => {
      try {
        const term = this.#mem.term(index);
        await this.#storage.saveSnapshot({
          meta: { index, term, confState: conf },
          data,
        });
        this.#mem.createSnapshot(index, conf, data);
        const keep = Math.max(0, index - this.#cfg.snapshotCatchUpEntries);
        if (keep > this.#mem.firstIndex()) this.#mem.compact(keep);
        await this.#storage.compactPrefix(keep);
        this.#snapshotIndex = index;
        this.metrics.snapshots.inc();
      } catch (e) {
        if (isRaftError(e)) {
          // The raft log moved under the snapshot: nothing was written.
          console.error(`${this.#cfg.name}: snapshot at ${index} failed: ${e}`);
          return;
        }
        // A failed write of the snapshot is a failed fsync like any other.
        this.#fail(
          new Error(
            `snapshot at ${index}: ${e instanceof Error ? e.message : e}`,
          ),
        );
      } finally {
        this.#snapshotting = false;
      }
    })();
  }

  // ---- peers ----

  #receive(m: Message): void {
    if (this.#stopped) return;
    this.metrics.messagesReceived.inc({ type: m.type });
    try {
      this.#node.step(m);
    } catch (e) {
      if (!isRaftError(e)) throw e;
    }
    this.#drive();
  }

  #send(m: Message): void {
    const addr = this.#addresses.get(m.to);
    if (!addr) return; // unknown peer: raft retries once it learns the address
    if (this.#transport.send(m, addr.peer)) {
      this.metrics.messagesSent.inc({ type: m.type });
    }
  }
}
