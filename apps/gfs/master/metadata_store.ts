import type { ReplicaMember, ReplicaStatus } from "@strata/replication";
import type { ApplyResult, MasterOp, MasterState } from "./master_state.ts";

/**
 * How a store is replicated, for `GET /v1/master`: a single master on a
 * local op log always leads; a Raft replica reports its group's view.
 */
export type StoreReplication =
  | { replicated: false; role: "leader" }
  | {
    replicated: true;
    id: number;
    role: ReplicaStatus["role"];
    term: number;
    /** The leader's id (0: none known). */
    leader: number;
    commitIndex: number;
    members: ReplicaMember[];
  };

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
 * Where the master's metadata lives, the one interface the master's parts
 * see: {@link MasterStore} (a single master on a local op log) and
 * {@link ReplicatedMasterStore} (a replica of a Raft group) implement it.
 * The differences between the two — whether this master may serve, who
 * leads, when a new term starts, the group's status and metrics — are
 * members here, so no caller tells the two apart.
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
  /** True when this master may answer now (a single master always may). */
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
   * Runs `fn` once if the store halts on a failed write (a Raft replica,
   * as etcd on a failed fsync; `master_main.ts` then exits). A single
   * master's op log fails the request instead and never halts.
   */
  onFailure(fn: (error: unknown) => void): void;
  /**
   * Changes the group's membership (a replicated store; a single master
   * answers `bad_request`) and resolves with the members once applied.
   */
  changeMember(change: MemberChange): Promise<ReplicaMember[]>;
  /** How this store is replicated (role, term, members). */
  replication(): StoreReplication;
  /** Prometheus text of the store's own metrics ("" when it has none). */
  renderMetrics(): Promise<string>;
  /** Stops and closes the store. */
  close(): Promise<void>;
}
