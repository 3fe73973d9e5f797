import type { ReplicaMember, ReplicaStatus } from "@strata/replication";
import type { ApplyResult, MasterOp, MasterState } from "./master_state.ts";

/**
 * The group's view from this replica, for `GET /v1/master`; a master
 * alone is a group of one (`replicated: false`).
 */
export interface StoreReplication {
  /** True when the group has more than one member. */
  replicated: boolean;
  id: number;
  role: ReplicaStatus["role"];
  term: number;
  /** The leader's id (0: none known). */
  leader: number;
  commitIndex: number;
  members: ReplicaMember[];
}

/** A change of the master group's membership (`POST /v1/master/members`). */
export type MemberChange =
  | {
    action: "add";
    id: number;
    /** The new master's raft address, host:port. */
    peer: string;
    /** Its HTTP address, host:port. */
    http: string;
  }
  | { action: "promote" | "remove"; id: number };

/**
 * Where the master's metadata lives, the interface the master's parts
 * see: {@link ReplicatedMasterStore} implements it, for a master alone (a
 * one-member group) and for a replica of a group alike; the packages/sim
 * workload drives the same object. Whether this master may serve, who
 * leads, when a new term starts, the group's status and metrics are
 * members here.
 */
export interface MetadataStore {
  /** The metadata, as of the last applied operation. */
  readonly state: MasterState;
  /** Index of the last applied operation. */
  readonly appliedIndex: number;
  /** What opening found (for the ready line). */
  readonly recovery: unknown;
  /**
   * Makes `op` durable (and replicated), then applies it in log order.
   * @throws GfsError as apply would have; `not_leader`/`unavailable` from
   *   a replicated store that cannot commit it.
   */
  propose(op: MasterOp): Promise<ApplyResult>;
  /** True when this master may answer now (it leads and has caught up). */
  serving(): boolean;
  /**
   * True when this master may answer a request that arrived now, after
   * confirming its leadership when {@link serving} alone cannot tell.
   */
  servingConfirmed(): Promise<boolean>;
  /** The leader's base URL when another master leads, else undefined. */
  leaderUrl(): string | undefined;
  /** Runs `fn` each time this master starts serving a new term. */
  onTakeover(fn: () => void): void;
  /**
   * Runs `fn` once if the store halts on a failed write (as etcd on a
   * failed fsync; `master_main.ts` then exits and a supervisor restarts it).
   */
  onFailure(fn: (error: unknown) => void): void;
  /**
   * Changes the group's membership (`bad_request` for a master alone
   * without a raft port) and resolves with the members once applied.
   */
  changeMember(change: MemberChange): Promise<ReplicaMember[]>;
  /** The group's view: role, term, members. */
  replication(): StoreReplication;
  /** Prometheus text of the store's own metrics ("" when it has none). */
  renderMetrics(): Promise<string>;
  /** Stops and closes the store. */
  close(): Promise<void>;
}
