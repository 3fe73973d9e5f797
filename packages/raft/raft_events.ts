import type { ConfChange, NodeId } from "./messages.ts";

/** The role a node plays in its current term. */
export type RaftRole = "follower" | "preCandidate" | "candidate" | "leader";

/**
 * One entry of the structured event log: role changes, votes and why,
 * membership changes, snapshots and leadership transfers. Drained from each
 * Ready (`ready.events`) for diagnostics and the dashboard.
 */
export type RaftEvent =
  | {
    kind: "role";
    node: NodeId;
    term: number;
    role: RaftRole;
    lead: NodeId;
  }
  | {
    kind: "vote";
    node: NodeId;
    term: number;
    candidate: NodeId;
    pre: boolean;
    granted: boolean;
    /** "log up to date", "log behind", "already voted", "in leader lease". */
    reason: string;
  }
  | {
    kind: "step_down";
    node: NodeId;
    term: number;
    reason: "check_quorum" | "removed";
  }
  | {
    kind: "conf_change";
    node: NodeId;
    term: number;
    index: number;
    /** The (first) change; absent when a joint configuration was left. */
    change?: ConfChange;
    /** Every change of the entry (several for a joint change, none for leaving one). */
    changes: ConfChange[];
    /** True while the configuration is joint after this entry. */
    joint: boolean;
    voters: NodeId[];
    learners: NodeId[];
    /** Outgoing voters while joint. */
    votersOutgoing?: NodeId[];
  }
  | {
    kind: "snapshot";
    node: NodeId;
    term: number;
    index: number;
    action: "send_started" | "restored";
    peer?: NodeId;
    bytes?: number;
  }
  | {
    kind: "transfer";
    node: NodeId;
    term: number;
    target: NodeId;
    phase: "started" | "timeout_now" | "aborted";
  };
