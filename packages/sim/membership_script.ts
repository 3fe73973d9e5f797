/**
 * The membership scripts shared by `membership_sim_test.ts` and the
 * playground's `membership` and `joint-membership` replay scenarios, so
 * that a failing seed of the test replays as the very same run. Changes go
 * through production `ReplicatedNode.changeMembers` (ConfChangeV2 with the
 * members' addresses in its context) on a {@link ReplicaCluster}, under
 * loss.
 */
import type { ConfChange, ConfState } from "@strata/raft";
import type {
  ReplicaCluster,
  ReplicaClusterOptions,
} from "./replica_cluster.ts";
import { SimError } from "./sim_error.ts";
import { SimPeerNetwork } from "./sim_peer_network.ts";

/**
 * Records a scenario check: throws (ending the run) when `ok` is false,
 * else notes that `text` holds for `nodeIds`.
 */
export type ScriptCheck = (
  ok: boolean,
  text: string,
  nodeIds?: number[],
) => void;

/** The cluster both scripts run on (with a seed). */
export const MEMBERSHIP_CLUSTER: Omit<ReplicaClusterOptions, "seed"> = {
  nodes: 3,
  snapshotInterval: 10,
};

/**
 * Asks the leader (again, after a lost leader or a refusal) for `changes`
 * until its configuration satisfies `done`.
 * @throws SimError `no_progress` when it never does within 40 rounds.
 */
async function change(
  c: ReplicaCluster,
  changes: ConfChange[],
  done: (cs: ConfState) => boolean,
  during?: (attempt: number) => void,
): Promise<void> {
  const addresses = Object.fromEntries(
    changes.filter((x) => x.type !== "removeNode").map((x) => [
      x.nodeId,
      { peer: SimPeerNetwork.address(x.nodeId) },
    ]),
  );
  let asked = -1;
  for (let attempt = 0; attempt < 40; attempt++) {
    const replica = c.leader()?.replica;
    const cs = replica?.confState();
    if (cs && !cs.votersOutgoing && done(cs)) return;
    if (replica && (asked < 0 || attempt - asked > 10)) {
      asked = attempt;
      const ctl = new AbortController();
      c.scheduler.after(3000, () => ctl.abort());
      replica.changeMembers(changes, addresses, ctl.signal).catch(() => {});
    }
    during?.(attempt);
    await c.run(300);
  }
  throw new SimError(
    "no_progress",
    `membership change ${JSON.stringify(changes)} never applied`,
  );
}

/**
 * On a cluster of {@link MEMBERSHIP_CLUSTER}: node 4 joins as a learner,
 * catches up from a snapshot and is promoted; a node crashes and restarts;
 * the leader removes itself and is stopped; the others go on.
 * @returns a one-line summary.
 */
export async function learnerJoinsAndLeaderLeaves(
  c: ReplicaCluster,
  check: ScriptCheck,
): Promise<string> {
  c.setReliable(false);
  for (let i = 0; i < 15; i++) await c.one(`a${i}`, 3, true);
  // Node 4 starts empty and joins as a learner; it catches up (from a
  // snapshot: the log was compacted).
  const n4 = c.addNode(4);
  await change(
    c,
    [{ type: "addLearner", nodeId: 4 }],
    (cs) => cs.learners.includes(4),
  );
  const caught = await c.runUntil(
    () =>
      n4.sm.appliedIndex >=
        (c.leader()?.replica?.status().commitIndex ?? Infinity) - 1,
    5000,
  );
  check(
    caught && n4.lastSnapshot > 0 &&
      !n4.replica!.confState().voters.includes(4),
    "learner 4 caught up from a snapshot and is not a voter yet",
    [4],
  );
  // Promote it once caught up.
  await change(
    c,
    [{ type: "addNode", nodeId: 4 }],
    (cs) => cs.voters.includes(4),
  );
  for (let i = 0; i < 5; i++) await c.one(`b${i}`, 4, true);
  // A crash in the middle of it all.
  const victim = c.leader()!.id === 2 ? 3 : 2;
  c.crash(victim);
  await c.one("during-crash", 3, true);
  c.restart(victim);
  // The leader removes itself; the others go on.
  const old = c.leader()!.id;
  await change(
    c,
    [{ type: "removeNode", nodeId: old }],
    (cs) => !cs.voters.includes(old),
  );
  await c.run(2000);
  const leader = c.leader();
  check(
    leader !== undefined && leader.id !== old,
    `a new leader took over after node ${old} removed itself`,
    leader ? [leader.id] : [],
  );
  // The removed leader knows it is no longer a voter; then it is stopped.
  const gone = c.node(old).replica;
  check(
    !gone || !gone.confState().voters.includes(old),
    `removed node ${old} knows it is no longer a voter`,
    [old],
  );
  c.crash(old);
  const idx = await c.one("after-removal", 3, true);
  const rest = [1, 2, 3, 4].filter((i) => i !== old);
  check(
    rest.every((id) =>
      c.node(id).replica!.confState().voters.join() === rest.join() &&
      c.node(id).sm.appliedIndex >= idx
    ),
    `nodes ${rest.join(", ")} are the voters and applied index ${idx}`,
    rest,
  );
  return `node 4 joined as a learner and was promoted, node ${victim} crashed and restarted, leader ${old} removed itself and node ${
    leader!.id
  } took over`;
}

/**
 * On a cluster of {@link MEMBERSHIP_CLUSTER}: two of three voters (2 and
 * 3) are replaced by new servers 4 and 5 in one joint change while voter 1
 * crashes and restarts; the replaced voters are then stopped and the new
 * configuration goes on.
 * @returns a one-line summary.
 */
export async function jointReplacement(
  c: ReplicaCluster,
  check: ScriptCheck,
): Promise<string> {
  c.setReliable(false);
  for (let i = 0; i < 12; i++) await c.one(`a${i}`, 3, true);
  c.addNode(4);
  c.addNode(5);
  await change(
    c,
    [
      { type: "addNode", nodeId: 4 },
      { type: "addNode", nodeId: 5 },
      { type: "removeNode", nodeId: 2 },
      { type: "removeNode", nodeId: 3 },
    ],
    (cs) => cs.voters.join() === "1,4,5",
    (attempt) => {
      // A crash while the change is under way.
      if (attempt === 1) c.crash(1);
      if (attempt === 3) c.restart(1);
    },
  );
  if (!c.node(1).alive) c.restart(1);
  await c.run(1000);
  const leader = c.leader();
  const cs = leader?.replica?.confState();
  check(
    cs !== undefined && cs.voters.join() === "1,4,5" &&
      cs.learners.length === 0 && cs.votersOutgoing === undefined,
    `node ${
      leader?.id ?? "(none)"
    } leads the joint change's outcome: voters 1, 4, 5 and no learners`,
    leader ? [leader.id] : [],
  );
  // The replaced voters are stopped (by an operator).
  c.crash(2);
  c.crash(3);
  const idx = await c.one("after-joint", 3, true);
  check(
    [1, 4, 5].every((id) =>
      c.node(id).replica!.confState().voters.join() === "1,4,5" &&
      c.node(id).sm.appliedIndex >= idx
    ),
    `nodes 1, 4, 5 are the voters and applied index ${idx}`,
    [1, 4, 5],
  );
  return `voters 2 and 3 were replaced by 4 and 5 in one joint change while node 1 crashed and restarted; node ${
    leader!.id
  } leads the new configuration`;
}
