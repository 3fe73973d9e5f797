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

const JOINT =
  "two of three voters are replaced at once through a joint configuration, under loss, crashes and snapshots";

Deno.test(JOINT, () => {
  runSeeded(FILE, JOINT, testSeeds(4, 40), (seed) => {
    const c = new RaftCluster({ seed, nodes: 3, snapshotInterval: 10 });
    c.setReliable(false);
    for (let i = 0; i < 12; i++) c.one(`a${i}`, 3, true);
    c.addNode(4);
    c.addNode(5);
    const context = new TextEncoder().encode("4=n4:7000,5=n5:7000");
    let proposed = -1;
    for (let attempt = 0; attempt < 40; attempt++) {
      const leader = c.leader();
      const cs = leader?.raw.confState();
      if (cs && !cs.votersOutgoing && cs.voters.join() === "1,4,5") break;
      if (leader && !cs!.votersOutgoing && proposed < 0) {
        try {
          leader.raw.proposeConfChangeV2({
            changes: [
              { type: "addNode", nodeId: 4 },
              { type: "addNode", nodeId: 5 },
              { type: "removeNode", nodeId: 2 },
              { type: "removeNode", nodeId: 3 },
            ],
            context,
          });
          c.pump(leader);
          proposed = attempt;
        } catch (e) {
          if (!isRaftError(e, "proposal_dropped")) throw e;
        }
      }
      // A crash while the change is under way.
      if (attempt === 1) c.crash(1);
      if (attempt === 3) c.restart(1);
      c.run(300);
      // A proposal lost with a leader is proposed again.
      if (proposed >= 0 && attempt - proposed > 10) proposed = -1;
    }
    if (!c.node(1).alive) c.restart(1);
    c.run(1000);
    const leader = c.leader();
    assert.ok(leader, "no leader after the joint change");
    assert.deepEqual(leader.raw.confState(), {
      voters: [1, 4, 5],
      learners: [],
    });
    const idx = c.one("after-joint", 3, true);
    for (const id of [1, 4, 5]) {
      assert.deepEqual(c.node(id).raw.confState().voters, [1, 4, 5]);
      assert.ok(c.node(id).sm.applied >= idx);
    }
  });
});
