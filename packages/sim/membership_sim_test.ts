// Membership changes through production ReplicatedNodes
// (`ReplicatedNode.changeMembers`, raft's ConfChangeV2 with the new
// members' addresses in its context) on the simulator's ports, under loss,
// crashes and snapshots.
import assert from "node:assert/strict";
import type { ConfChange, ConfState } from "@strata/raft";
import { SimPeerNetwork } from "./sim_peer_network.ts";
import { ReplicaCluster } from "./replica_cluster.ts";
import { runSeededAsync, testSeeds } from "./seeded_test_runner.ts";

const FILE = "packages/sim/membership_sim_test.ts";

/**
 * Asks the leader (again, after a lost leader or a refusal) for `changes`
 * until its configuration satisfies `done`.
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
  throw new Error(`membership change ${JSON.stringify(changes)} never applied`);
}

const NAME =
  "a learner catches up, is promoted, and the leader removes itself, under loss and crashes";

Deno.test(
  NAME,
  () =>
    runSeededAsync(FILE, NAME, testSeeds(2, 40), async (seed) => {
      const c = new ReplicaCluster({ seed, nodes: 3, snapshotInterval: 10 });
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
      assert.ok(
        await c.runUntil(
          () =>
            n4.sm.appliedIndex >=
              (c.leader()?.replica?.status().commitIndex ?? Infinity) - 1,
          5000,
        ),
        "learner did not catch up",
      );
      assert.ok(n4.lastSnapshot > 0, "the learner installed no snapshot");
      assert.equal(n4.replica!.confState().voters.includes(4), false);
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
      assert.ok(
        leader && leader.id !== old,
        "no new leader after the leader left",
      );
      // The removed leader knows it is no longer a voter; then it is stopped.
      const gone = c.node(old).replica;
      if (gone) assert.equal(gone.confState().voters.includes(old), false);
      c.crash(old);
      const idx = await c.one("after-removal", 3, true);
      const rest = [1, 2, 3, 4].filter((i) => i !== old);
      for (const id of rest) {
        assert.deepEqual(c.node(id).replica!.confState().voters, rest);
        assert.ok(c.node(id).sm.appliedIndex >= idx);
      }
    }),
);

const JOINT =
  "two of three voters are replaced at once through a joint configuration, under loss, crashes and snapshots";

Deno.test(
  JOINT,
  () =>
    runSeededAsync(FILE, JOINT, testSeeds(2, 40), async (seed) => {
      const c = new ReplicaCluster({ seed, nodes: 3, snapshotInterval: 10 });
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
      assert.ok(leader, "no leader after the joint change");
      assert.deepEqual(leader.replica!.confState(), {
        voters: [1, 4, 5],
        learners: [],
      });
      // The replaced voters are stopped (by an operator).
      c.crash(2);
      c.crash(3);
      const idx = await c.one("after-joint", 3, true);
      for (const id of [1, 4, 5]) {
        assert.deepEqual(c.node(id).replica!.confState().voters, [1, 4, 5]);
        assert.ok(c.node(id).sm.appliedIndex >= idx);
      }
    }),
);
