/**
 * One replicated-KV node: the KV state machine (with its watch hub,
 * sessions and member address records) run by packages/replication's
 * {@link ReplicatedNode}, which owns the raft core, the disk and the
 * sockets. This file only translates between the KV service and the
 * replicated log.
 */
import {
  type CommandStateMachine,
  isReplicationError,
  type NodeClock,
  type PeerAddress,
  ReplicatedNode,
  type ReplicatedNodeConfig,
  ReplicationMetrics,
  systemClock,
} from "@strata/replication";
import type { RaftEvent } from "@strata/raft";
import {
  type KvCommand,
  KvCommandMessage,
  MAX_EXPIRE_IDS,
} from "./kv_commands.ts";
import { type KvResult, KvStateMachine } from "./kv_state_machine.ts";
import {
  type Consistency,
  type KvService,
  type MemberChange,
  type MemberInfo,
  ServiceError,
  type ServiceStatus,
} from "./kv_service.ts";
import { WatchHub } from "./watch_hub.ts";
import { SessionRenewals } from "./session_renewals.ts";
import { LearnerServer, type LearnerServerOptions } from "./learner_server.ts";
import {
  type ClusterConfig,
  type JointChange,
  planMemberChanges,
} from "./member_changes.ts";

export type { PeerAddress } from "@strata/replication";

/** Configuration of a node: the replica's, plus its HTTP address. */
export interface KvNodeConfig
  extends Omit<ReplicatedNodeConfig, "metrics" | "name"> {
  /** This node's HTTP address, for redirect hints (host:port). */
  httpAddress?: string;
  /** Serve client learners on this port (learner_server.ts); omitted: none. */
  learner?: LearnerServerOptions;
}

const MEMBER_PREFIX = "_cluster/members/";

/**
 * The KV state machine as the replicated log sees it: every applied
 * command also publishes its watch events, and member address records
 * (written by membership changes of older versions, which sent addresses
 * through the key space; now they travel in the change's context) teach
 * the node where peers live.
 */
class KvReplica implements CommandStateMachine<KvResult | undefined> {
  readonly store = new KvStateMachine();
  readonly watches = new WatchHub();
  onAddresses: () => void = () => {};
  /** Called with the ids of sessions an applied command ended. */
  onSessionsEnded: (ids: readonly number[]) => void = () => {};
  /** Called with the id of a session an applied command opened or renewed. */
  onSessionRenewed: (id: number) => void = () => {};

  get appliedIndex(): number {
    return this.store.appliedIndex;
  }

  apply(index: number, command: Uint8Array): KvResult | undefined {
    let c: KvCommand;
    try {
      c = KvCommandMessage.decode(command);
    } catch {
      // Not a KV command (or corrupt): nothing to apply, but the index is consumed.
      this.skip(index);
      return undefined;
    }
    const out = this.store.apply(index, c);
    if (!out) return undefined;
    this.watches.publish(out.events);
    // Applied, changed or not: learner streams report progress from here.
    this.watches.advanceTo(index);
    if (c.op === "put" && c.key.startsWith(MEMBER_PREFIX)) this.onAddresses();
    const r = out.result;
    if (r.op === "expire" && r.expired.length > 0) {
      this.onSessionsEnded(r.expired);
    } else if (r.op === "session_close") this.onSessionsEnded([r.id]);
    else if (r.op === "session_open" || r.op === "session_keepalive") {
      this.onSessionRenewed(r.id);
    }
    return r;
  }

  skip(index: number): void {
    this.store.skip(index);
    this.watches.advanceTo(index);
  }

  snapshot(): Uint8Array {
    return this.store.snapshot();
  }

  restore(data: Uint8Array, index: number): void {
    this.store.restore(data);
    // The changes between the last applied entry and the snapshot never
    // passed through here: watches may not resume across the jump.
    this.watches.restart(index);
    this.onAddresses();
  }
}

/** A running node. Create with {@link KvNode.start}. */
export class KvNode implements KvService {
  readonly store: KvStateMachine;
  readonly watches: WatchHub;
  readonly metricsRegistry: ReplicationMetrics;
  readonly #replica: KvReplica;
  readonly #node: ReplicatedNode<KvResult | undefined>;
  readonly #cfg: KvNodeConfig;
  /** Session expiry reads `monotonic` only; `wall` just labels answers. */
  readonly #clock: NodeClock;
  readonly #stopExpiry: () => void;
  /** Keep-alives this leader took in memory (session_renewals.ts). */
  readonly #renewals = new SessionRenewals();
  /** Counts this node's leadership changes (a renewal checks it did not move). */
  #leaderEpoch = 0;
  readonly #learners: LearnerServer | undefined;

  private constructor(
    cfg: KvNodeConfig,
    replica: KvReplica,
    node: ReplicatedNode<KvResult | undefined>,
    learners: LearnerServer | undefined,
  ) {
    this.#cfg = cfg;
    this.#clock = cfg.clock ?? systemClock;
    this.#learners = learners;
    this.#replica = replica;
    this.#node = node;
    this.store = replica.store;
    this.watches = replica.watches;
    this.metricsRegistry = node.metrics;
    replica.onAddresses = () => this.#learnAddressesFromStore();
    this.#learnAddressesFromStore();
    // Session expiry rides on the raft tick (every tickMs, as its own
    // interval did) rather than a timer of its own: on an idle cluster a
    // second 100 ms timer on every node was a third of its wake-ups, and
    // only the leader ever proposes an expiry.
    this.#stopExpiry = node.onTick(() => this.#maybeExpireSessions());
    const leaderChanged = (leading: boolean) => {
      this.#leaderEpoch++;
      this.#renewals.leaderChanged(leading, this.#clock.monotonic());
    };
    node.onLeaderChange((_lead, role) => leaderChanged(role === "leader"));
    if (node.isLeader) leaderChanged(true);
    replica.onSessionsEnded = (ids) => {
      for (const id of ids) this.#renewals.forget(id);
    };
    // Applied after the open or keep-alive reached its node: counting it
    // here is late, never early.
    replica.onSessionRenewed = (id) =>
      this.#renewals.renewedByLog(id, this.#clock.monotonic());
  }

  /**
   * Opens (or creates) the data directory, recovers the snapshot and log,
   * binds the raft port and starts ticking.
   * @throws StorageError `locked` when another process owns the directory.
   */
  static async start(config: KvNodeConfig): Promise<KvNode> {
    const replica = new KvReplica();
    const members = new Map(config.members);
    if (config.httpAddress) {
      const self = members.get(config.id);
      if (self) members.set(config.id, { ...self, http: config.httpAddress });
    }
    const { httpAddress: _, learner, ...rest } = config;
    const node = await ReplicatedNode.start({
      ...rest,
      members,
      metrics: new ReplicationMetrics(),
    }, replica);
    let learners: LearnerServer | undefined;
    try {
      learners = learner &&
        LearnerServer.listen(replica.store, replica.watches, learner);
    } catch (e) {
      await node.stop();
      throw e;
    }
    return new KvNode(config, replica, node, learners);
  }

  /** The last (up to 1,000) structured raft events: roles, votes, conf changes. */
  events(): readonly RaftEvent[] {
    return this.#node.events();
  }

  /**
   * Calls `listener` once when the replica halts on a failed disk write
   * (see `ReplicatedNode.onFailure`); `node_main.ts` then exits.
   */
  onFailure(listener: (error: unknown) => void): () => void {
    return this.#node.onFailure(listener);
  }

  /** The raft TCP port actually bound. */
  get peerPort(): number {
    return this.#node.peerPort;
  }

  /** The node's id. */
  get id(): number {
    return this.#cfg.id;
  }

  /** The learner port actually bound (undefined: learners are not served). */
  get learnerPort(): number | undefined {
    return this.#learners?.port;
  }

  /** Stops ticking, closes sockets and files, releases the directory. */
  async stop(): Promise<void> {
    this.#stopExpiry();
    await this.#learners?.close();
    await this.#node.stop();
  }

  // ---- KvService ----

  propose(command: KvCommand, signal: AbortSignal): Promise<KvResult> {
    return serviceErrors(async () => {
      const r = await this.#node.propose(
        KvCommandMessage.encode(command),
        signal,
      );
      if (r === undefined) {
        throw new ServiceError("internal", "the command was not applied");
      }
      return r;
    });
  }

  readBarrier(consistency: Consistency, signal: AbortSignal): Promise<void> {
    return serviceErrors(() => this.#node.readBarrier(consistency, signal));
  }

  status(): ServiceStatus {
    return {
      ...this.#node.status(),
      keys: this.store.size,
      sessions: this.store.sessionCount,
      watchers: this.watches.watchers,
      ...(this.#learners
        ? {
          learner: `${this.#cfg.learner!.hostname}:${this.#learners.port}`,
          clientLearners: this.#learners.stats(),
        }
        : {}),
    };
  }

  members(): MemberInfo[] {
    return this.#node.members();
  }

  changeMembership(
    change: MemberChange,
    signal: AbortSignal,
  ): Promise<MemberInfo[]> {
    return serviceErrors(async () => {
      if (!this.#node.isLeader) {
        throw this.#node.notLeader("membership changes go to the leader");
      }
      const cs = this.#node.confState();
      if (change.action === "add") {
        if (
          cs.voters.includes(change.id) || cs.learners.includes(change.id)
        ) {
          throw new ServiceError(
            "conflict",
            `node ${change.id} is already a member`,
          );
        }
      } else if (
        change.action === "promote" && !cs.learners.includes(change.id)
      ) {
        throw new ServiceError(
          "conflict",
          `node ${change.id} is not a learner`,
        );
      } else if (
        change.action === "remove" && !cs.voters.includes(change.id) &&
        !cs.learners.includes(change.id)
      ) {
        throw new ServiceError(
          "not_found",
          `node ${change.id} is not a member`,
        );
      }
      const type = change.action === "add"
        ? "addLearner"
        : change.action === "promote"
        ? "addNode"
        : "removeNode";
      // One change (ConfChangeV2 with a single change: not joint, as
      // etcd); the new member's addresses travel in its context, so every
      // replica learns them from the log (not through the key space).
      await this.#node.changeMembers(
        [{ type, nodeId: change.id }],
        change.action === "add"
          ? {
            [change.id]: {
              peer: change.peerAddress,
              ...(change.httpAddress ? { http: change.httpAddress } : {}),
            },
          }
          : {},
        signal,
      );
      // An address record written by an older version for this member goes too.
      if (
        change.action === "remove" && this.store.get(MEMBER_PREFIX + change.id)
      ) {
        await this.propose(
          { op: "delete", key: MEMBER_PREFIX + change.id },
          signal,
        ).catch(() => {});
      }
      return this.members();
    });
  }

  configuration(): ClusterConfig {
    const cs = this.#node.confState();
    return {
      voters: [...cs.voters].sort((a, b) => a - b),
      learners: [...cs.learners].sort((a, b) => a - b),
      ...(cs.votersOutgoing
        ? { votersOutgoing: [...cs.votersOutgoing].sort((a, b) => a - b) }
        : {}),
    };
  }

  changeMembers(
    changes: readonly JointChange[],
    signal: AbortSignal,
  ): Promise<MemberInfo[]> {
    return serviceErrors(async () => {
      const config = this.configuration();
      // Joint here means a change is in progress, whoever leads: say so
      // (409) rather than send the caller looking for a leader that may be
      // missing exactly because the joint configuration lacks a quorum.
      if (config.votersOutgoing || this.#node.isLeader) {
        planMemberChanges(config, changes);
      }
      if (!this.#node.isLeader) {
        throw this.#node.notLeader("membership changes go to the leader");
      }
      const plan = planMemberChanges(config, changes);
      // The new members' addresses travel in the change's context (not the key space).
      await this.#node.changeMembers(plan.changes, plan.addresses, signal);
      // Address records a one-at-a-time `add` wrote for a removed member go too.
      for (const id of plan.removed) {
        if (this.store.get(MEMBER_PREFIX + id)) {
          await this.propose({ op: "delete", key: MEMBER_PREFIX + id }, signal)
            .catch(() => {});
        }
      }
      return this.members();
    });
  }

  transferLeadership(
    to: number | undefined,
    signal: AbortSignal,
  ): Promise<number> {
    return serviceErrors(() => this.#node.transferLeadership(to, signal));
  }

  metrics(): Promise<string> {
    return this.#node.renderMetrics({
      keys: this.store.size,
      watchers: this.watches.watchers,
    });
  }

  observeRequest(route: string, status: number, seconds: number): void {
    this.metricsRegistry.httpRequests.observe(
      { route, status: String(status) },
      seconds,
    );
  }

  /**
   * Renews a session: on the leader in memory once its leadership is
   * confirmed (session_renewals.ts: no log entry, no fsync), else — on a
   * follower, or for a session already due — through the log as before.
   * A follower's answer names the leader (`leaderHttp`), so a client can
   * send its next keep-alives there.
   * @throws ServiceError `not_found` (expired or never opened), `no_leader`, `timeout`.
   */
  async keepAlive(
    id: number,
    signal: AbortSignal,
  ): Promise<{
    id: number;
    expiresAt: number;
    revision: number;
    leaderHttp?: string;
  }> {
    const arrivedAt = this.#clock.monotonic();
    const arrivedWall = this.#clock.wall();
    const epoch = this.#leaderEpoch;
    if (this.#renewals.leading) {
      // Lease or ReadIndex: no later leader took over before this point,
      // which is after the keep-alive arrived.
      await this.readBarrier("lease", signal);
      if (this.#leaderEpoch === epoch && this.#renewals.leading) {
        const s = this.store.session(id);
        if (!s) {
          throw new ServiceError(
            "not_found",
            `session ${id} does not exist (expired or never opened)`,
          );
        }
        const now = this.#clock.monotonic();
        const until = this.#renewals.renew(s, arrivedAt, now);
        if (until !== undefined) {
          // The deadline as a wall time on this node, for the client to
          // read; expiry itself is measured on the monotonic clock.
          const expiresAt = Math.round(this.#clock.wall() + until - now);
          return { id, expiresAt, revision: this.store.appliedIndex };
        }
      }
    }
    const r = await this.propose(
      { op: "session_keepalive", id, now: arrivedWall },
      signal,
    );
    if (r.op === "error") throw new ServiceError("not_found", r.message);
    if (r.op !== "session_keepalive") {
      throw new ServiceError("internal", `expected a keep-alive, got ${r.op}`);
    }
    const leaderHttp = this.#node.isLeader
      ? undefined
      : this.#node.status().leaderHttp;
    return {
      id: r.id,
      expiresAt: r.expiresAt,
      revision: r.revision,
      ...(leaderHttp ? { leaderHttp } : {}),
    };
  }

  /**
   * The leader proposes the expiry of the sessions silent for their TTL on
   * its monotonic clock (session_renewals.ts): after confirming its
   * leadership and applying all that was committed, it names them in a
   * `session_expire` with the index it decided at.
   */
  #lastExpireProposal = -Infinity;
  #expiring = false;
  #maybeExpireSessions(): void {
    if (!this.#renewals.leading || this.store.sessionCount === 0) return;
    if (this.#expiring) return;
    const now = this.#clock.monotonic();
    if (now - this.#lastExpireProposal < 250) return;
    if (this.#renewals.due(this.store.sessions(), now, 1).length === 0) return;
    this.#lastExpireProposal = now;
    this.#expiring = true;
    const epoch = this.#leaderEpoch;
    (async () => {
      const signal = AbortSignal.timeout(5000);
      // Applied up to the commit index of this term: every replica holds
      // each session's renewedAt exactly past this index (snapshots of the
      // older format give their own index, which is below it).
      await this.readBarrier("lease", signal);
      if (this.#leaderEpoch !== epoch || !this.#renewals.leading) return;
      // Decided and stamped in one step: an entry applied after `asOf`
      // that renews one of them keeps it, on every replica.
      const asOf = this.store.appliedIndex;
      const ids = this.#renewals.due(
        this.store.sessions(),
        this.#clock.monotonic(),
        MAX_EXPIRE_IDS,
      );
      if (ids.length === 0) return;
      await this.propose({ op: "session_expire", ids, asOf }, signal);
    })().catch(() => {}).finally(() => this.#expiring = false);
  }

  #learnAddressesFromStore(): void {
    for (const kv of this.store.range(MEMBER_PREFIX, undefined, 10_000)) {
      const id = Number(kv.key.slice(MEMBER_PREFIX.length));
      try {
        const v = JSON.parse(new TextDecoder().decode(kv.value)) as PeerAddress;
        if (id && typeof v.peer === "string") this.#node.setAddress(id, v);
      } catch { /* not an address record */ }
    }
  }
}

/** Runs `fn`, turning the replicated log's errors into the KV service's. */
async function serviceErrors<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (isReplicationError(e)) {
      throw new ServiceError(e.code, e.message, e.details);
    }
    throw e;
  }
}
