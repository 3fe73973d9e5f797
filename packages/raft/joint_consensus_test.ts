// Joint consensus (etcd's ConfChangeV2): several changes at once through a
// joint configuration in which every decision needs a majority of both the
// old and the new voters; "auto" leaves it by itself, "explicit" on an empty
// change; the context payload travels with the change.
import assert from "node:assert/strict";
import { decodeAnyConfChange, type NodeId } from "./messages.ts";
import { RawNode } from "./raw_node.ts";
import { MemoryStorage } from "./storage.ts";
import { TestCluster, text } from "./_test_cluster.ts";

const addresses = text(
  JSON.stringify({ 4: "10.0.0.4:7000", 5: "10.0.0.5:7000" }),
);

/** 1,2,3 with 1 leading, and empty nodes 4 and 5 ready to join. */
function fiveNodes(): TestCluster {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  c.add(4, undefined);
  c.add(5, undefined);
  return c;
}

const replaceTwo = [
  { type: "addNode" as const, nodeId: 4 },
  { type: "addNode" as const, nodeId: 5 },
  { type: "removeNode" as const, nodeId: 2 },
  { type: "removeNode" as const, nodeId: 3 },
];

function isolate(c: TestCluster, ids: NodeId[]): void {
  c.drop = (m) => ids.includes(m.from) || ids.includes(m.to);
}

Deno.test("replacing two of three voters at once goes through a joint configuration and leaves it by itself", () => {
  const c = fiveNodes();
  const events: Array<{ joint: boolean; voters: number[]; out?: number[] }> =
    [];
  c.onReady = (id, rd) => {
    if (id !== 1) return;
    for (const e of rd.events) {
      if (e.kind === "conf_change") {
        events.push({
          joint: e.joint,
          voters: e.voters,
          out: e.votersOutgoing,
        });
      }
    }
  };
  c.node(1).proposeConfChangeV2({ changes: replaceTwo, context: addresses });
  c.settle();
  c.tick(3);
  assert.deepEqual(events, [
    { joint: true, voters: [1, 4, 5], out: [1, 2, 3] },
    { joint: false, voters: [1, 4, 5], out: undefined },
  ]);
  for (const id of [1, 4, 5]) {
    assert.deepEqual(c.node(id).confState(), {
      voters: [1, 4, 5],
      learners: [],
    });
  }
  // The new configuration commits without 2 and 3.
  isolate(c, [2, 3]);
  c.node(1).propose(text("after"));
  c.settle();
  c.tick(2);
  assert.ok(c.values(4).includes("after") && c.values(5).includes("after"));
  // The context came back with the committed entry, on every node.
  const conf = c.applied.get(5)!.filter((e) => e.type === "conf")
    .map((e) => decodeAnyConfChange(e.data))
    .find((a) => a?.v === 2 && a.cc.changes.length === 4);
  assert.ok(conf?.v === 2);
  assert.deepEqual(conf.cc.context, addresses);
});

Deno.test("while joint, an entry commits only with a majority of the old and of the new voters", () => {
  const c = fiveNodes();
  c.node(1).proposeConfChangeV2({
    changes: replaceTwo,
    transition: "explicit",
  });
  c.settle();
  c.tick(2);
  assert.deepEqual(c.node(1).confState().votersOutgoing, [1, 2, 3]);
  const commit = () => c.node(1).raft.log.committed;

  // The old majority {1,2,3} alone is not enough.
  isolate(c, [4, 5]);
  c.node(1).propose(text("old-only"));
  c.settle();
  const before = commit();
  assert.equal(c.node(1).raft.log.lastIndex(), before + 1, "not committed");
  // Nor is the new majority {1,4,5} alone.
  c.drop = () => false;
  c.settle();
  isolate(c, [2, 3]);
  c.node(1).propose(text("new-only"));
  c.settle();
  const mid = commit();
  assert.equal(c.node(1).raft.log.lastIndex(), mid + 1, "not committed");
  // 2 from the old and 4 from the new: both majorities (1,2 of 1,2,3; 1,4 of 1,4,5).
  isolate(c, [3, 5]);
  c.tick(2);
  assert.equal(commit(), c.node(1).raft.log.lastIndex());
});

Deno.test("while joint, a candidate needs votes from a majority of both voter sets", () => {
  const c = fiveNodes();
  c.node(1).proposeConfChangeV2({
    changes: replaceTwo,
    transition: "explicit",
  });
  c.settle();
  c.tick(2);
  assert.ok(c.node(2).raft.joint() && c.node(4).raft.joint());
  // Leader 1 gone; 2 and 3 (the old majority) cannot elect 2 without 4 or 5.
  isolate(c, [1, 4, 5]);
  c.tick(40, [2, 3]);
  assert.notEqual(c.node(2).raft.role, "leader");
  assert.notEqual(c.node(3).raft.role, "leader");
  // With 4 back it is still not enough: 2 and 3 are a majority of {1,2,3},
  // but 4 alone is not one of {1,4,5}.
  isolate(c, [1, 5]);
  c.tick(40, [2, 3, 4]);
  assert.ok([2, 3, 4].every((id) => c.node(id).raft.role !== "leader"));
  // With 5 as well, {2,3} and {4,5} are majorities of both: one leader.
  isolate(c, [1]);
  c.tick(60, [2, 3, 4, 5]);
  const leaders = [2, 3, 4, 5].filter((id) =>
    c.node(id).raft.role === "leader"
  );
  assert.equal(leaders.length, 1);
});

Deno.test("an explicit joint configuration is left only by an empty change; other changes wait", () => {
  const c = fiveNodes();
  c.node(1).proposeConfChangeV2({
    changes: replaceTwo,
    transition: "explicit",
  });
  c.settle();
  c.tick(3);
  assert.ok(c.node(1).raft.joint(), "left without being asked");
  // Another change while joint is turned into an empty entry.
  c.node(1).proposeConfChangeV2({
    changes: [{ type: "addLearner", nodeId: 6 }],
  });
  c.settle();
  c.tick(2);
  assert.deepEqual(c.node(1).confState().learners, []);
  assert.ok(c.node(1).raft.joint());
  c.node(1).proposeConfChangeV2({ changes: [] });
  c.settle();
  c.tick(2);
  for (const id of [1, 4, 5]) {
    assert.deepEqual(c.node(id).confState(), {
      voters: [1, 4, 5],
      learners: [],
    });
  }
  // An empty change outside a joint configuration changes nothing.
  c.node(1).proposeConfChangeV2({ changes: [] });
  c.settle();
  assert.deepEqual(c.node(1).confState(), { voters: [1, 4, 5], learners: [] });
});

Deno.test("a leader removed by a joint change leads the joint configuration, then steps down when it is left", () => {
  const c = fiveNodes();
  c.node(1).proposeConfChangeV2({
    changes: [
      { type: "addNode", nodeId: 4 },
      { type: "addNode", nodeId: 5 },
      { type: "removeNode", nodeId: 1 },
    ],
  });
  c.settle();
  c.tick(3);
  assert.notEqual(c.node(1).raft.role, "leader");
  assert.deepEqual(c.node(1).confState(), {
    voters: [2, 3, 4, 5],
    learners: [],
  });
  // The others elect a leader among themselves, which brings every one of
  // them to the final configuration.
  c.tick(60, [2, 3, 4, 5]);
  assert.equal(
    [2, 3, 4, 5].filter((id) => c.node(id).raft.role === "leader").length,
    1,
  );
  for (const id of [2, 3, 4, 5]) {
    assert.deepEqual(c.node(id).confState(), {
      voters: [2, 3, 4, 5],
      learners: [],
    });
  }
});

Deno.test("a voter demoted to learner by a joint change becomes a learner when it is left", () => {
  const c = fiveNodes();
  c.node(1).proposeConfChangeV2({
    changes: [
      { type: "addNode", nodeId: 4 },
      { type: "addLearner", nodeId: 3 },
    ],
    transition: "explicit",
  });
  c.settle();
  c.tick(2);
  const cs = c.node(1).confState();
  assert.deepEqual(cs.voters, [1, 2, 4]);
  assert.deepEqual(cs.votersOutgoing, [1, 2, 3]);
  assert.deepEqual(cs.learnersNext, [3]);
  c.node(1).proposeConfChangeV2({ changes: [] });
  c.settle();
  c.tick(2);
  assert.deepEqual(c.node(3).confState(), { voters: [1, 2, 4], learners: [3] });
});

Deno.test("a node restarted from a snapshot taken while joint is still joint", () => {
  const storage = new MemoryStorage();
  storage.applySnapshot({
    meta: {
      index: 10,
      term: 2,
      confState: {
        voters: [1, 4, 5],
        learners: [],
        votersOutgoing: [1, 2, 3],
        learnersNext: [],
        autoLeave: true,
      },
    },
    data: new Uint8Array(),
  });
  const n = new RawNode({
    id: 4,
    storage,
    electionTick: 10,
    heartbeatTick: 1,
    random: () => 0.5,
  });
  assert.ok(n.raft.joint());
  assert.deepEqual(n.confState().votersOutgoing, [1, 2, 3]);
  assert.equal(n.confState().autoLeave, true);
});

Deno.test("malformed joint changes are refused with a typed error", () => {
  const c = fiveNodes();
  assert.throws(
    () =>
      c.node(1).proposeConfChangeV2({
        changes: [{ type: "addNode", nodeId: 0 }],
      }),
    /invalid membership change/,
  );
});

Deno.test("a change that would leave no voter is refused (it becomes an empty entry)", () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  c.node(1).proposeConfChangeV2({
    changes: [1, 2, 3].map((nodeId) => ({
      type: "removeNode" as const,
      nodeId,
    })),
  });
  c.settle();
  c.tick(3);
  assert.deepEqual(c.node(1).confState(), { voters: [1, 2, 3], learners: [] });
  assert.equal(c.node(1).raft.role, "leader");
  // Demoting every voter to learner leaves none either.
  c.node(1).proposeConfChangeV2({
    changes: [1, 2, 3].map((nodeId) => ({
      type: "addLearner" as const,
      nodeId,
    })),
  });
  c.settle();
  c.tick(3);
  assert.deepEqual(c.node(1).confState(), { voters: [1, 2, 3], learners: [] });
  // A change that keeps a voter still goes through.
  c.node(1).proposeConfChangeV2({
    changes: [2, 3].map((nodeId) => ({ type: "removeNode" as const, nodeId })),
  });
  c.settle();
  c.tick(3);
  assert.deepEqual(c.node(1).confState(), { voters: [1], learners: [] });
});
