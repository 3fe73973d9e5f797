import {
  type CommandStateMachine,
  isReplicationError,
  type NodeClock,
  type PeerAddress,
  type ReplicaMember,
  type ReplicaPorts,
  type ReplicaStatus,
  ReplicatedNode,
} from "@strata/replication";
import { realTimers, type Timers } from "@strata/transport";
import {
  GfsError,
  type GfsErrorCode,
  isGfsError,
} from "../shared/gfs_error.ts";
import {
  type ApplyResult,
  decodeOp,
  encodeOp,
  type MasterOp,
  MasterState,
} from "./master_state.ts";
import type {
  MemberChange,
  MetadataStore,
  StoreReplication,
} from "./metadata_store.ts";
import { migrateOpLog, type OpLogMigration } from "./op_log_migration.ts";

/** What applying one logged operation gave: the result or the same rejection on every replica. */
export type MasterOutcome =
  | { ok: true; result: ApplyResult }
  | { ok: false; code: GfsErrorCode; message: string };

/**
 * {@link MasterState} as a replicated state machine: the bytes in the
 * log are encoded {@link MasterOp}s; a rejected op is a result, not an
 * exception, so every replica reaches the same verdict.
 */
export class MasterMachine implements CommandStateMachine<MasterOutcome> {
  /** The metadata (replaced when a snapshot is restored). */
  state: MasterState = new MasterState();
  /** Index of the last log entry applied, skipped or restored. */
  appliedIndex = 0;

  /** Decodes and applies one {@link MasterOp}; a GfsError becomes an `ok: false` outcome. */
  apply(index: number, command: Uint8Array): MasterOutcome {
    this.appliedIndex = index;
    try {
      return { ok: true, result: this.state.apply(decodeOp(command)) };
    } catch (e) {
      if (isGfsError(e)) return { ok: false, code: e.code, message: e.message };
      throw e;
    }
  }

  /** Consumes `index` without an operation. */
  skip(index: number): void {
    this.appliedIndex = index;
  }

  /** The encoded {@link MasterState} (a checkpoint). */
  snapshot(): Uint8Array {
    return this.state.encode();
  }

  /** Replaces the state with a checkpoint taken at `index`. */
  restore(data: Uint8Array, index: number): void {
    this.state = MasterState.decode(data);
    this.appliedIndex = index;
  }
}

/** A proposal deadline shared by the proposals of one event-loop turn. */
interface SharedDeadline {
  signal: AbortSignal;
  /** Proposals using it that have not settled. */
  pending: number;
  /** True until the turn that created it is over. */
  open: boolean;
  /** One of them settled. */
  settled(): void;
}

/** Options of {@link ReplicatedMasterStore.open}. */
export interface ReplicatedMasterOptions {
  /** This master's id in the group. */
  id: number;
  /**
   * Every master: id → raft address and HTTP address (host:port).
   * Leave it and `listen` out for a master that runs alone (a one-member
   * group without a raft port).
   */
  members?: Map<number, PeerAddress>;
  /** Host and port the raft TCP server binds (required with other members). */
  listen?: { hostname: string; port: number };
  /** Start as a new member of a running group (no bootstrap). */
  join?: boolean;
  /** Milliseconds per raft tick (default 100). */
  tickMs?: number;
  /** Ticks without a leader before campaigning (default 10). */
  electionTicks?: number;
  /** Ticks between heartbeats (default: ReplicatedNode's, a fifth of electionTicks). */
  heartbeatTicks?: number;
  /** Snapshot (checkpoint) every this many operations (default 10,000). */
  checkpointEvery?: number;
  /**
   * Raft log segment size in bytes (default 8 MiB: 10,000 ops between
   * snapshots take a few MiB, and opening preallocates and scans a segment,
   * which at raft's default 64 MiB is most of the time to serving).
   */
  segmentBytes?: number;
  /** Secret every master proves in the raft handshake (the cell's peer secret). */
  secret?: string;
  /** Raft over TLS: this master's certificate and key, and the roots its peers' must chain to. */
  tls?: { cert: string; key: string; caCerts: string[] };
  /** The masters' HTTP scheme, for {@link ReplicatedMasterStore.leaderUrl} (default "http"). */
  scheme?: "http" | "https";
  /** The clocks the lease and its guard read (default: the system's; the simulator's are virtual). */
  clock?: NodeClock;
}

/**
 * The master's metadata on strata's Raft: every mutation is a log entry
 * replicated to a majority of master replicas before it is applied, so
 * losing a master (even the leader, even with `kill -9`) loses no
 * acknowledged operation. Only the leader serves; it starts serving a new
 * term once it has applied everything committed before it (a ReadIndex
 * round through its own term), and stops the moment it loses its lease.
 */
export class ReplicatedMasterStore implements MetadataStore {
  /** The raft replica carrying the operations. */
  readonly node: ReplicatedNode<MasterOutcome>;
  /** What opening migrated from a former single master's op log, if anything. */
  readonly migrated: OpLogMigration | undefined;
  readonly #machine: MasterMachine;
  #serving = false;
  #term = 0;
  readonly #takeover = new Set<() => void>();
  #deadline: SharedDeadline | undefined;
  readonly #scheme: "http" | "https";
  readonly #timers: Timers;
  /** Serve from leadership alone, without the lease (a planted bug, see @strata/replication). */
  readonly #noLeaseBug: boolean;

  private constructor(
    node: ReplicatedNode<MasterOutcome>,
    m: MasterMachine,
    scheme: "http" | "https",
    ports: ReplicaPorts,
    migrated: OpLogMigration | undefined,
  ) {
    this.node = node;
    this.migrated = migrated;
    this.#machine = m;
    this.#scheme = scheme;
    this.#timers = ports.timers ?? realTimers;
    this.#noLeaseBug = ports.unsafePlantedBug === "serving_without_lease";
    node.onLeaderChange((_lead, role) => {
      this.#serving = false;
      if (role === "leader") this.#catchUp(node.status().term);
    });
  }

  /**
   * Opens (or creates) the replica's data directory and joins the group.
   * A master alone (no `members`, no `listen`) is a one-member group with
   * no raft port: it leads at once and this resolves once it serves; a
   * data directory of the former single-master op log is migrated first
   * (see op_log_migration.ts). `ports` replace the replica's disk,
   * network and timers (the simulator passes its own; leave it out in
   * production).
   * @throws StorageError `locked` when another process owns the directory;
   *   GfsError `bad_request` when members other than `id` come without `listen`.
   */
  static async open(
    dir: string,
    o: ReplicatedMasterOptions,
    ports: ReplicaPorts = {},
  ): Promise<ReplicatedMasterStore> {
    const machine = new MasterMachine();
    const alone = o.members === undefined;
    const segmentBytes = o.segmentBytes ?? 8 * 2 ** 20;
    const migrated = ports.storage === undefined
      ? await migrateOpLog(dir, o.id, segmentBytes)
      : undefined;
    const node = await ReplicatedNode.start(
      {
        id: o.id,
        members: o.members ?? new Map([[o.id, { peer: "" }]]),
        join: o.join,
        dataDir: dir,
        listen: o.listen,
        tickMs: o.tickMs,
        electionTicks: o.electionTicks,
        heartbeatTicks: o.heartbeatTicks,
        snapshotEntries: o.checkpointEvery ?? 10_000,
        segmentBytes,
        name: `gfs master ${o.id}`,
        secret: o.secret,
        tls: o.tls,
        clock: o.clock,
      },
      machine,
      ports,
    ).catch((e) => {
      if (isReplicationError(e, "bad_request")) {
        throw new GfsError("bad_request", e.message);
      }
      throw e;
    });
    const store = new ReplicatedMasterStore(
      node,
      machine,
      o.scheme ?? "http",
      ports,
      migrated,
    );
    if (alone) {
      // No one else can lead: the store is ready once it serves (a few ms).
      try {
        await store.#within(10_000, (s) => store.#servingNow(s));
      } catch (e) {
        await store.close();
        throw new GfsError(
          "unavailable",
          `the master did not start serving: ${e}`,
        );
      }
    }
    return store;
  }

  /** The current metadata (replaced when a snapshot is installed). */
  get state(): MasterState {
    return this.#machine.state;
  }

  /** Index of the last applied log entry. */
  get appliedIndex(): number {
    return this.#machine.appliedIndex;
  }

  /** What recovery found (the raft log recovers itself; kept for the ready line). */
  get recovery(): { appliedIndex: number; migrated?: OpLogMigration } {
    return {
      appliedIndex: this.appliedIndex,
      ...(this.migrated ? { migrated: this.migrated } : {}),
    };
  }

  /** Role, term, leader, log positions. */
  status(): ReplicaStatus {
    return this.node.status();
  }

  /**
   * True when this master may serve from its lease: it leads, holds a
   * valid lease (measured on the monotonic clock and guarded against bad
   * clocks, see @strata/replication), and has applied everything committed
   * before its term.
   */
  serving(): boolean {
    if (this.#noLeaseBug) return this.#serving && this.node.isLeader;
    return this.#serving && this.node.leaseValid();
  }

  /**
   * True when this master may serve a request that arrived now: at once
   * from the lease ({@link serving}), or, when only the lease is missing (it
   * lapsed, a pause between ticks voided it, or the clock guard distrusts
   * the clocks), after a ReadIndex round has confirmed that it still leads
   * its term. A master stopped and resumed after another was elected learns
   * of the new term in that round and stops serving.
   */
  async servingConfirmed(): Promise<boolean> {
    if (this.serving()) return true;
    if (!this.#serving || !this.node.isLeader) return false;
    const term = this.#term;
    try {
      await this.#within(2000, (s) => this.node.readBarrier("linearizable", s));
    } catch {
      return false;
    }
    return this.#serving && this.node.isLeader && this.#term === term &&
      this.node.status().term === term;
  }

  /** The leader's base URL when another master leads, else undefined. */
  leaderUrl(): string | undefined {
    const s = this.node.status();
    if (s.leader === 0 || s.leader === s.id || !s.leaderHttp) return undefined;
    return `${this.#scheme}://${s.leaderHttp}`;
  }

  /** The group's view from this replica: role, term, leader, members. */
  replication(): StoreReplication {
    const s = this.node.status();
    const members = this.node.members();
    return {
      replicated: members.length > 1,
      id: s.id,
      role: s.role,
      term: s.term,
      leader: s.leader,
      commitIndex: s.commitIndex,
      members,
    };
  }

  /** The Raft replica's metrics (strata_raft_*). */
  renderMetrics(): Promise<string> {
    return this.node.renderMetrics();
  }

  /** Runs `fn` each time this master starts serving a new term. */
  onTakeover(fn: () => void): void {
    this.#takeover.add(fn);
  }

  /**
   * Adds a master as a learner (`add`, with its addresses), makes a learner
   * a voter (`promote`), or removes a master (`remove`), through the Raft
   * log (the addresses travel in the change), and waits until it applies.
   * @throws GfsError `not_leader` (ask the leader), `conflict` (another
   *   change in flight; adding a member, promoting a voter), `not_found`
   *   (promoting or removing a non-member), `bad_request` (e.g. leaving no
   *   voter),
   *   `unavailable` (not applied within 10 s; it may still be).
   */
  async changeMember(change: MemberChange): Promise<ReplicaMember[]> {
    // As etcd's member API: adding a member twice would demote a voter to
    // a learner, and promoting or removing an unknown one does nothing.
    const known = this.node.members().find((m) => m.id === change.id);
    if (change.action === "add" && known) {
      throw new GfsError(
        "conflict",
        `master ${change.id} is already a member (${known.role})`,
      );
    }
    if (change.action !== "add" && !known) {
      throw new GfsError("not_found", `master ${change.id} is not a member`);
    }
    if (change.action === "promote" && known?.role === "voter") {
      throw new GfsError("conflict", `master ${change.id} is already a voter`);
    }
    const type = change.action === "add"
      ? "addLearner"
      : change.action === "promote"
      ? "addNode"
      : "removeNode";
    const addresses: Record<number, PeerAddress> = change.action === "add"
      ? { [change.id]: { peer: change.peer, http: change.http } }
      : {};
    try {
      await this.node.changeMembers(
        [{ type, nodeId: change.id }],
        addresses,
        AbortSignal.timeout(10_000),
      );
    } catch (e) {
      if (isReplicationError(e, "no_leader")) {
        throw new GfsError("not_leader", e.message);
      }
      if (isReplicationError(e, "conflict")) {
        throw new GfsError("conflict", e.message);
      }
      if (isReplicationError(e, "bad_request")) {
        throw new GfsError(
          "bad_request",
          this.node.peerPort === 0 && change.action === "add"
            ? `this master runs alone without a raft port (started without --peers): restart it with --peers ${this.node.id}=raftHost:port/httpHost:port (itself only), then add members`
            : e.message,
        );
      }
      if (isReplicationError(e)) throw new GfsError("unavailable", e.message);
      throw e;
    }
    return this.node.members();
  }

  /** Runs `fn` once when the Raft replica halts on a failed write. */
  onFailure(fn: (error: unknown) => void): void {
    this.node.onFailure(fn);
  }

  /**
   * Replicates `op`, then resolves with what apply returned.
   * @throws GfsError as apply would have; `not_leader` when this master
   *   does not lead; `unavailable` when the op may or may not commit.
   */
  async propose(op: MasterOp): Promise<ApplyResult> {
    let out: MasterOutcome;
    try {
      const deadline = this.#proposeDeadline();
      try {
        out = await this.node.propose(encodeOp(op), deadline.signal);
      } finally {
        deadline.settled();
      }
    } catch (e) {
      if (isReplicationError(e, "no_leader")) {
        throw new GfsError("not_leader", e.message);
      }
      if (isReplicationError(e)) throw new GfsError("unavailable", e.message);
      throw e;
    }
    if (!out.ok) throw new GfsError(out.code, out.message);
    return out.result;
  }

  /** Leaves the group and closes the log. */
  async close(): Promise<void> {
    this.#serving = false;
    await this.node.stop();
  }

  /**
   * The 10 s deadline of a proposal, one signal (one timer) shared by the
   * proposals of one turn of the event loop: a batch of concurrent
   * proposals would otherwise arm and cancel a timer each, a tenth of the
   * CPU a proposal costs. The timer is cancelled once the turn is over and
   * every proposal sharing it has settled. Call `settled()` once per call.
   */
  #proposeDeadline(): SharedDeadline {
    let d = this.#deadline;
    if (d === undefined) {
      const ctl = new AbortController();
      const cancel = this.#timers.setTimer(
        10_000,
        () => ctl.abort(new DOMException("timed out", "TimeoutError")),
      );
      const shared: SharedDeadline = {
        signal: ctl.signal,
        pending: 0,
        open: true,
        settled() {
          if (--shared.pending === 0 && !shared.open) cancel();
        },
      };
      this.#deadline = d = shared;
      queueMicrotask(() => {
        this.#deadline = undefined;
        shared.open = false;
        if (shared.pending === 0) cancel();
      });
    }
    d.pending++;
    return d;
  }

  /** Runs `fn` with a signal aborted after `ms` on the replica's timers (virtual ones in the simulator). */
  async #within<T>(ms: number, fn: (s: AbortSignal) => Promise<T>): Promise<T> {
    const ctl = new AbortController();
    const cancel = this.#timers.setTimer(
      ms,
      () => ctl.abort(new DOMException("timed out", "TimeoutError")),
    );
    try {
      return await fn(ctl.signal);
    } finally {
      cancel();
    }
  }

  /** Resolves once this master serves (polls every 5 ms on the replica's timers). */
  async #servingNow(signal: AbortSignal): Promise<void> {
    while (!this.serving()) {
      signal.throwIfAborted();
      await new Promise((r) => this.#timers.setTimer(5, () => r(0)));
    }
  }

  #catchUp(term: number): void {
    this.#term = term;
    (async () => {
      // Retry while this is still the same leadership term.
      while (this.node.isLeader && this.#term === term) {
        try {
          await this.#within(
            5000,
            (s) => this.node.readBarrier("linearizable", s),
          );
          if (!this.node.isLeader || this.#term !== term) return;
          for (const fn of this.#takeover) fn();
          this.#serving = true;
          return;
        } catch {
          await new Promise((r) => this.#timers.setTimer(100, () => r(0)));
        }
      }
    })();
  }
}
