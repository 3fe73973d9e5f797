import assert from "node:assert/strict";
import { type ConfChange, isRaftError } from "@strata/raft";
import { RaftCluster } from "./raft_cluster.ts";
import { runSeeded, testSeeds } from "./seeded_test_runner.ts";

const FILE = "packages/sim/membership_sim_test.ts";

/** Proposes a membership change until the leader has applied it. */
function change(
  c: RaftCluster,
  cc: ConfChange,
  done: (voters: number[], learners: number[]) => boolean,
): void {
  for (let attempt = 0; attempt < 20; attempt++) {
    const leader = c.leader();
    if (leader) {
      const cs = leader.raw.confState();
      if (done(cs.voters, cs.learners)) return;
      try {
        leader.raw.proposeConfChange(cc);
        c.pump(leader);
      } catch (e) {
        if (!isRaftError(e, "proposal_dropped")) throw e;
      }
    }
    c.run(300);
  }
  throw new Error(`membership change ${JSON.stringify(cc)} never applied`);
}

const NAME =
  "a learner catches up, is promoted, and the leader removes itself, under loss and crashes";

Deno.test(NAME, () => {
  runSeeded(FILE, NAME, testSeeds(4, 40), (seed) => {
    const c = new RaftCluster({ seed, nodes: 3, snapshotInterval: 10 });
    c.setReliable(false);
    for (let i = 0; i < 15; i++) c.one(`a${i}`, 3, true);
    // Add node 4 as a learner; it catches up (from a snapshot: the log was compacted).
    c.addNode(4);
    change(c, { type: "addLearner", nodeId: 4 }, (_, l) => l.includes(4));
    const n4 = c.node(4);
    assert.ok(
      c.runUntil(
        () => n4.sm.applied >= c.leader()!.raw.raft.log.committed - 1,
        5000,
      ),
      "learner did not catch up",
    );
    assert.equal(n4.raw.raft.promotable(), false);
    // Promote it once caught up.
    change(c, { type: "addNode", nodeId: 4 }, (v) => v.includes(4));
    for (let i = 0; i < 5; i++) c.one(`b${i}`, 4, true);
    // A crash in the middle of it all.
    const victim = c.leader()!.id === 2 ? 3 : 2;
    c.crash(victim);
    c.one("during-crash", 3, true);
    c.restart(victim);
    // The leader removes itself; the others go on.
    const old = c.leader()!.id;
    change(c, { type: "removeNode", nodeId: old }, (v) => !v.includes(old));
    c.run(2000);
    const leader = c.leader();
    assert.ok(
      leader && leader.id !== old,
      "no new leader after the leader left",
    );
    const idx = c.one("after-removal", 3, true);
    for (const id of [1, 2, 3, 4].filter((i) => i !== old)) {
      assert.deepEqual(
        c.node(id).raw.confState().voters,
        [1, 2, 3, 4].filter((i) => i !== old),
      );
      assert.ok(c.node(id).sm.applied >= idx);
    }
    assert.equal(c.node(old).raw.raft.promotable(), false);
  });
});
