// Membership changes through production ReplicatedNodes
// (`ReplicatedNode.changeMembers`, raft's ConfChangeV2 with the new
// members' addresses in its context) on the simulator's ports, under loss,
// crashes and snapshots.
import assert from "node:assert/strict";
import {
  jointReplacement,
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
      // The playground's "joint-membership" replay scenario runs the same script.
      const c = new ReplicaCluster({ seed, ...MEMBERSHIP_CLUSTER });
      await jointReplacement(c, (ok, text) => assert.ok(ok, text));
    }),
);
