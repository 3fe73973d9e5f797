import { EdgeError, type EdgeErrorCode } from "@strata/edge";
import type { ReplicaStatus } from "@strata/replication";
import type { KvCommand } from "./kv_commands.ts";
import type { KvResult, KvStateMachine } from "./kv_state_machine.ts";
import type { LearnerServerStats } from "./learner_server.ts";
import type { WatchHub } from "./watch_hub.ts";
import type { ClusterConfig, JointChange } from "./member_changes.ts";

/** How fresh a read must be. */
export type Consistency = "linearizable" | "lease" | "stale";

/** Machine-readable reasons a request to a node fails (statuses: see EdgeError). */
export type ServiceErrorCode = Extract<
  EdgeErrorCode,
  | "no_leader"
  | "timeout"
  | "not_found"
  | "bad_request"
  | "too_large"
  | "conflict"
  | "compacted"
  | "unavailable"
  | "internal"
>;

/**
 * The error every layer of the KV service throws; an EdgeError, so the
 * edge answers it with its code's status and JSON envelope.
 */
export class ServiceError extends EdgeError {
  /** Why. */
  declare readonly code: ServiceErrorCode;

  /** @param code why; @param message what a person can do about it. */
  constructor(
    code: ServiceErrorCode,
    message: string,
    details?: Record<string, unknown>,
  ) {
    super(code, message, details);
    this.name = "ServiceError";
  }
}

/** One member as the cluster API shows it. */
export interface MemberInfo {
  id: number;
  role: "voter" | "learner";
  peerAddress?: string;
  httpAddress?: string;
}

/** A node's state for `GET /v1/status`. */
export interface ServiceStatus extends ReplicaStatus {
  keys: number;
  sessions: number;
  watchers: number;
  /** The learner port's address (`host:port`), when learners are served. */
  learner?: string;
  /** What the learner port sent so far (client learners, not raft learners). */
  clientLearners?: LearnerServerStats;
}

/** A membership change request. */
export type MemberChange =
  | { action: "add"; id: number; peerAddress: string; httpAddress?: string }
  | { action: "promote"; id: number }
  | { action: "remove"; id: number };

/**
 * What the HTTP layer needs from a node. The real node (node.ts) backs it
 * with Raft, the disk log and TCP peers; tests may back it with a simpler
 * implementation.
 */
export interface KvService {
  /**
   * Proposes a command and resolves with its result once it is committed
   * and applied on this node. A follower forwards it to the leader.
   * @throws ServiceError `no_leader`, `timeout`.
   */
  propose(command: KvCommand, signal: AbortSignal): Promise<KvResult>;
  /**
   * Resolves when the local state machine may serve a read of this
   * consistency (ReadIndex for linearizable, the leader lease for lease,
   * nothing for stale).
   * @throws ServiceError `no_leader`, `timeout`.
   */
  readBarrier(consistency: Consistency, signal: AbortSignal): Promise<void>;
  /**
   * Renews session `id` (without it the HTTP layer proposes
   * `session_keepalive`). `leaderHttp`, when set, names the leader, where
   * the next keep-alives cost less.
   * @throws ServiceError `not_found`, `no_leader`, `timeout`.
   */
  keepAlive?(id: number, signal: AbortSignal): Promise<{
    id: number;
    expiresAt: number;
    revision: number;
    leaderHttp?: string;
  }>;
  /** The applied state (read it after `readBarrier`). */
  readonly store: KvStateMachine;
  /** Committed changes for watchers. */
  readonly watches: WatchHub;
  /** This node's view. */
  status(): ServiceStatus;
  /** The members. */
  members(): MemberInfo[];
  /** Adds a learner, promotes it to voter, or removes a member. */
  changeMembership(
    change: MemberChange,
    signal: AbortSignal,
  ): Promise<MemberInfo[]>;
  /**
   * The current configuration; `votersOutgoing` is set while it is joint.
   */
  configuration(): ClusterConfig;
  /**
   * Applies several changes at once through a joint configuration (left
   * automatically) and resolves once the final one is applied here.
   * @throws ServiceError `no_leader`, `conflict`, `not_found`,
   *   `bad_request`, `timeout` (the change may still apply).
   */
  changeMembers(
    changes: readonly JointChange[],
    signal: AbortSignal,
  ): Promise<MemberInfo[]>;
  /** Hands leadership to `to` (or the most caught-up voter). */
  transferLeadership(
    to: number | undefined,
    signal: AbortSignal,
  ): Promise<number>;
  /** Prometheus text exposition. */
  metrics(): Promise<string>;
  /** Records one HTTP request (for the metrics). */
  observeRequest?(route: string, status: number, seconds: number): void;
}
