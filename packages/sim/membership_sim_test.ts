// Membership changes through production ReplicatedNodes
// (`ReplicatedNode.changeMembers`, raft's ConfChangeV2 with the new
// members' addresses in its context) on the simulator's ports, under loss,
// crashes and snapshots.
import assert from "node:assert/strict";
import {
  change,
  learnerJoinsAndLeaderLeaves,
  MEMBERSHIP_CLUSTER,
} from "./membership_script.ts";
import { ReplicaCluster } from "./replica_cluster.ts";
import { runSeededAsync, testSeeds } from "./seeded_test_runner.ts";

const FILE = "packages/sim/membership_sim_test.ts";

const NAME =
  "a learner catches up, is promoted, and the leader removes itself, under loss and crashes";

Deno.test(
  NAME,
  () =>
    runSeededAsync(FILE, NAME, testSeeds(2, 40), async (seed) => {
      // The playground's "membership" replay scenario runs the same script.
      const c = new ReplicaCluster({ seed, ...MEMBERSHIP_CLUSTER });
      await learnerJoinsAndLeaderLeaves(c, (ok, text) => assert.ok(ok, text));
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
