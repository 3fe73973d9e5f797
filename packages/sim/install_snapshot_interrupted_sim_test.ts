// An InstallSnapshot interrupted mid-transfer, at the ReplicatedNode level:
// a lagging follower receives the leader's snapshot in 64-byte chunks, and
// after the first chunk is sent the follower crashes, the leader crashes,
// or the follower is cut off. Afterwards the group must agree again with the
// follower caught up from a snapshot (the transfer restarts from the start).
import assert from "node:assert/strict";
import { ReplicaCluster } from "./replica_cluster.ts";
import { runSeededAsync, testSeeds } from "./seeded_test_runner.ts";

const FILE = "packages/sim/install_snapshot_interrupted_sim_test.ts";

for (const interrupt of ["follower crash", "leader crash", "partition"]) {
  const name =
    `an InstallSnapshot interrupted by a ${interrupt} mid-transfer restarts cleanly`;
  Deno.test(
    name,
    () =>
      runSeededAsync(FILE, name, testSeeds(1, 20), async (seed) => {
        const c = new ReplicaCluster({
          seed,
          nodes: 3,
          snapshotInterval: 10,
          snapshotChunkBytes: 64,
        });
        await c.one("first", 3, true);
        const leader = await c.checkOneLeader();
        const f = leader % 3 + 1;
        c.disconnect(f);
        for (let i = 0; i < 30; i++) await c.one(`v${i}`, 2, true);
        // Let the leader's snapshot reach its disk and compact the log.
        await c.run(200);
        const snapsBefore = c.messageCounts.get("snap") ?? 0;
        c.connect(f);
        assert.ok(
          await c.runUntil(
            () => (c.messageCounts.get("snap") ?? 0) > snapsBefore,
            3000,
          ),
          "the leader never sent a snapshot",
        );
        // One chunk is on its way: the follower has not installed it yet.
        assert.equal(c.node(f).lastSnapshot, 0, "installed in one message");
        if (interrupt === "follower crash") c.crash(f);
        else if (interrupt === "leader crash") c.crash(leader);
        else c.disconnect(f);
        await c.run(1500);
        if (interrupt === "follower crash") c.restart(f);
        else if (interrupt === "leader crash") c.restart(leader);
        else c.connect(f);
        const last = await c.one("after", 3, true);
        for (const node of c.nodes.values()) {
          assert.ok(
            node.sm.appliedIndex >= last,
            `node ${node.id} applied ${node.sm.appliedIndex} < ${last}`,
          );
        }
        assert.ok(c.node(f).lastSnapshot > 0, "the follower took no snapshot");
        assert.equal(c.nCommitted(last)[1], "after");
      }),
  );
}
