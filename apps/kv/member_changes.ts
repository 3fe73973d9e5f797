/**
 * Several membership changes applied at once through a joint configuration
 * (raft's ConfChangeV2): the request body, its zod schema, and the pure
 * check that turns it into raft changes against the current configuration.
 * No I/O here: the node (kv_node.ts) proposes what this plans.
 */
import { z } from "zod";
import type { ConfChange } from "@strata/raft";
import type { PeerAddress } from "@strata/replication";
import { ServiceError } from "./kv_service.ts";

const hostPort = z.string().regex(/^[^\s:/]+:\d{1,5}$/, "host:port").refine(
  (a) => Number(a.slice(a.lastIndexOf(":") + 1)) <= 65535,
  "port above 65535",
);
const memberId = z.number().int().positive().max(2 ** 31);

/** One change of a joint request (`POST /v1/cluster/changes`). */
export const jointChangeSchema = z.discriminatedUnion("action", [
  z.strictObject({
    /** A new voter (or, with `learner: true`, a new learner). */
    action: z.literal("add"),
    id: memberId,
    peerAddress: hostPort,
    httpAddress: hostPort.optional(),
    learner: z.boolean().default(false),
  }),
  /** A learner becomes a voter. */
  z.strictObject({ action: z.literal("promote"), id: memberId }),
  /** A voter becomes a learner. */
  z.strictObject({ action: z.literal("demote"), id: memberId }),
  z.strictObject({ action: z.literal("remove"), id: memberId }),
]);

/** The body of `POST /v1/cluster/changes`: 1 to 16 changes, each id at most once. */
export const jointChangesSchema = z.strictObject({
  changes: z.array(jointChangeSchema).min(1).max(16),
}).superRefine((b, ctx) => {
  const seen = new Set<number>();
  for (const [i, c] of b.changes.entries()) {
    if (seen.has(c.id)) {
      ctx.addIssue({
        code: "custom",
        path: ["changes", i, "id"],
        message: `node ${c.id} appears in more than one change`,
      });
    }
    seen.add(c.id);
  }
});

/** One validated change. */
export type JointChange = z.output<typeof jointChangeSchema>;

/** A configuration as `GET /v1/cluster` shows it. */
export interface ClusterConfig {
  /** The voters (the incoming set while joint). */
  voters: number[];
  learners: number[];
  /** While joint: the outgoing voters, whose majority must also agree. */
  votersOutgoing?: number[];
}

/** What the node proposes for a joint request. */
export interface MemberChangePlan {
  /** The raft changes, in request order. */
  changes: ConfChange[];
  /** Addresses of the added members, carried in the change's context. */
  addresses: Record<number, PeerAddress>;
  /** The configuration once the joint one is left. */
  after: { voters: number[]; learners: number[] };
  /** Ids that leave the cluster. */
  removed: number[];
}

/**
 * Checks a joint request against the current configuration and plans it.
 * @throws ServiceError `conflict` (409) while another change is joint, for
 *   an add of a member, a promote of a non-learner or a demote of a
 *   non-voter; `not_found` (404) for a remove of a non-member;
 *   `bad_request` (400) when no voter would remain.
 */
export function planMemberChanges(
  current: ClusterConfig,
  request: readonly JointChange[],
): MemberChangePlan {
  if (current.votersOutgoing) {
    throw new ServiceError(
      "conflict",
      "the cluster is in a joint configuration (another change is being applied); retry shortly",
    );
  }
  const voters = new Set(current.voters);
  const learners = new Set(current.learners);
  const isMember = (id: number) => voters.has(id) || learners.has(id);
  const changes: ConfChange[] = [];
  const addresses: Record<number, PeerAddress> = {};
  const removed: number[] = [];
  for (const c of request) {
    switch (c.action) {
      case "add":
        if (isMember(c.id)) {
          throw new ServiceError(
            "conflict",
            `node ${c.id} is already a ${
              voters.has(c.id) ? "voter" : "learner"
            }${learners.has(c.id) && !c.learner ? " (promote it)" : ""}`,
          );
        }
        changes.push({
          type: c.learner ? "addLearner" : "addNode",
          nodeId: c.id,
        });
        addresses[c.id] = {
          peer: c.peerAddress,
          ...(c.httpAddress ? { http: c.httpAddress } : {}),
        };
        (c.learner ? learners : voters).add(c.id);
        break;
      case "promote":
        if (!learners.has(c.id)) {
          throw new ServiceError("conflict", `node ${c.id} is not a learner`);
        }
        changes.push({ type: "addNode", nodeId: c.id });
        learners.delete(c.id);
        voters.add(c.id);
        break;
      case "demote":
        if (!voters.has(c.id)) {
          throw new ServiceError("conflict", `node ${c.id} is not a voter`);
        }
        changes.push({ type: "addLearner", nodeId: c.id });
        voters.delete(c.id);
        learners.add(c.id);
        break;
      case "remove":
        if (!isMember(c.id)) {
          throw new ServiceError("not_found", `node ${c.id} is not a member`);
        }
        changes.push({ type: "removeNode", nodeId: c.id });
        voters.delete(c.id);
        learners.delete(c.id);
        removed.push(c.id);
        break;
    }
  }
  if (voters.size === 0) {
    throw new ServiceError(
      "bad_request",
      "the changes would leave no voter; keep or add at least one",
    );
  }
  const sorted = (s: Set<number>) => [...s].sort((a, b) => a - b);
  return {
    changes,
    addresses,
    after: { voters: sorted(voters), learners: sorted(learners) },
    removed,
  };
}
