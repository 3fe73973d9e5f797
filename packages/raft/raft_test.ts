import assert from "node:assert/strict";
import { seeded, TestCluster, text } from "./_test_cluster.ts";
import { isRaftError } from "./raft_error.ts";
import { RawNode } from "./raw_node.ts";
import { MemoryStorage } from "./storage.ts";

Deno.test("a single node elects itself and commits its proposals", () => {
  const c = new TestCluster([1]);
  c.elect(1);
  assert.equal(c.node(1).raft.role, "leader");
  c.node(1).propose(text("x"));
  c.settle();
  assert.deepEqual(c.values(1), ["x"]);
});

Deno.test("a sole voter leads at once, with no tick: on bootstrap and on restart", () => {
  const c = new TestCluster([1]);
  c.settle(); // persists and applies the bootstrap membership
  assert.equal(c.node(1).raft.role, "leader");
  c.node(1).propose(text("x"));
  c.settle();
  assert.deepEqual(c.values(1), ["x"]);
  const term = c.node(1).raft.term;
  // Restarted from its storage: leader in the next term, before any tick.
  // (From applied 0 it re-applies the log first: the membership entries
  // must be applied before a node campaigns.)
  const storage = c.storages.get(1)!;
  const again = new RawNode({
    id: 1,
    electionTick: 10,
    heartbeatTick: 1,
    storage,
    random: seeded(2),
    applied: 0,
  });
  const rd = again.ready();
  assert.deepEqual(rd.committedEntries.map((e) => e.index), [1, 2, 3]);
  again.advance();
  assert.equal(again.raft.role, "leader");
  assert.equal(again.raft.term, term + 1);
  // Two voters: nobody campaigns before its election timeout.
  const two = new TestCluster([1, 2]);
  two.settle();
  assert.deepEqual([1, 2].map((i) => two.node(i).raft.role), [
    "follower",
    "follower",
  ]);
});

Deno.test("a follower left as the sole voter by a leader removing itself waits out its timeout", () => {
  const c = new TestCluster([1, 2]);
  c.elect(1);
  c.node(1).proposeConfChange({ type: "removeNode", nodeId: 1 });
  c.settle();
  c.tick(1, [2]);
  assert.deepEqual(c.node(2).confState().voters, [2]);
  // It still knows 1 as leader: no campaign inside 1's lease.
  assert.equal(c.node(2).raft.role, "follower");
  c.tick(40, [2]);
  assert.equal(c.node(2).raft.role, "leader");
});

Deno.test("three nodes elect exactly one leader from ticks with injected randomness", () => {
  const c = new TestCluster([1, 2, 3], {}, 42);
  c.tick(40);
  const leaders = [1, 2, 3].filter((i) => c.node(i).raft.role === "leader");
  assert.equal(leaders.length, 1);
  const term = c.node(leaders[0]!).raft.term;
  for (const i of [1, 2, 3]) assert.equal(c.node(i).raft.term, term);
});

Deno.test("the same random source gives the same election, a different one may not", () => {
  const run = (seed: number) => {
    const c = new TestCluster([1, 2, 3], {}, seed);
    c.tick(40);
    return [1, 2, 3].find((i) => c.node(i).raft.role === "leader");
  };
  assert.equal(run(7), run(7));
});

Deno.test("committed entries are replicated to and applied by every node in order", () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  for (const v of ["a", "b", "c"]) c.node(1).propose(text(v));
  c.settle();
  c.tick(2);
  for (const i of [1, 2, 3]) assert.deepEqual(c.values(i), ["a", "b", "c"]);
});

Deno.test("pre-vote keeps a partitioned node from inflating the term", () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  const term = c.node(1).raft.term;
  c.drop = (m) => m.to === 3 || m.from === 3;
  c.tick(100);
  assert.equal(c.node(3).raft.term, term, "isolated node bumped its term");
  assert.equal(c.node(3).raft.role, "preCandidate");
  c.drop = () => false;
  c.tick(5);
  assert.equal(c.node(1).raft.role, "leader");
  assert.equal(c.node(1).raft.term, term, "rejoin disrupted the leader");
});

Deno.test("check-quorum makes an isolated leader step down", () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  c.drop = (m) => m.from === 1 || m.to === 1;
  c.tick(25, [1]);
  assert.equal(c.node(1).raft.role, "follower");
});

Deno.test("followers in a leader's lease ignore vote requests", () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  c.tick(3);
  const term = c.node(1).raft.term;
  // Delivered to 2 directly: 2 is in lease and must not move.
  c.node(2).step({
    type: "vote",
    from: 3,
    to: 2,
    term: term + 1,
    index: 100,
    logTerm: 100,
  });
  assert.equal(c.node(2).raft.term, term);
  assert.equal(c.node(2).raft.vote, 1);
});

Deno.test("a vote is refused to a candidate whose log is behind", () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  c.node(1).propose(text("a"));
  c.settle();
  c.tick(15);
  const events: string[] = [];
  c.onReady = (_, rd) => {
    for (const e of rd.events) {
      if (e.kind === "vote" && !e.granted) events.push(e.reason);
    }
  };
  const t = c.node(2).raft.term;
  c.node(2).step({
    type: "vote",
    from: 3,
    to: 2,
    term: t + 1,
    index: 1,
    logTerm: 1,
    transfer: true,
  });
  c.drainReadys();
  assert.notEqual(c.node(2).raft.vote, 3);
  assert.ok(events.includes("log behind"));
});

function figure8(unsafe: boolean): { x: number; committed: number } {
  // One entry per append, so the old entry can be acknowledged alone.
  const c = new TestCluster([1, 2, 3, 4, 5], {
    maxSizePerMsg: 0,
    unsafe: { commitPreviousTermEntries: unsafe },
  });
  c.elect(1);
  c.tick(2);
  // Leader 1 writes x at index X; it reaches only node 2.
  c.drop = (m) => m.from === 1 && m.to !== 2;
  c.node(1).propose(text("x"));
  c.settle();
  const x = c.node(1).raft.log.lastIndex();
  // Node 2 leads a new term; it may replicate x but not its own no-op.
  // The first probe past x reaches each follower (and is rejected, as
  // they lack x); after that nothing past x gets through.
  const probed = new Set<number>();
  c.drop = (m) => {
    if (m.from === 1 || m.to === 1) return true;
    if (m.type !== "app" || !m.entries.some((e) => e.index > x)) return false;
    if (m.index === x && !probed.has(m.to)) {
      probed.add(m.to);
      return false;
    }
    return true;
  };
  c.elect(2);
  c.tick(3, [2, 3, 4, 5]);
  assert.equal(c.node(2).raft.role, "leader");
  assert.equal(c.node(2).raft.prs.get(3)!.match, x);
  assert.equal(c.node(2).raft.prs.get(4)!.match, x);
  return { x, committed: c.node(2).raft.log.committed };
}

Deno.test("the leader commits an old-term entry only with an entry of its own term (Figure 8)", () => {
  // x sits on a majority (2, 3, 4) but is from an older term.
  const ok = figure8(false);
  assert.ok(ok.committed < ok.x, "old-term entry committed by counting");
  // The deliberately broken rule does commit it: the test can fail.
  const bug = figure8(true);
  assert.ok(bug.committed >= bug.x);
});

Deno.test("fast backup skips a divergent term in a few round trips", () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  c.tick(2);
  // Leader 1 appends 50 entries nobody else sees.
  c.drop = (m) => m.from === 1 || m.to === 1;
  for (let i = 0; i < 50; i++) c.node(1).propose(text(`stale${i}`));
  c.settle();
  c.elect(2);
  for (let i = 0; i < 50; i++) c.node(2).propose(text(`new${i}`));
  c.settle();
  c.tick(2, [2, 3]);
  const rejectsBefore =
    c.sent.filter((m) => m.type === "appResp" && m.reject).length;
  c.drop = () => false;
  c.tick(5);
  const rejects =
    c.sent.filter((m) => m.type === "appResp" && m.reject).length -
    rejectsBefore;
  assert.ok(rejects <= 3, `${rejects} rejections to skip 50 entries`);
  assert.deepEqual(c.values(1).slice(-50), c.values(2).slice(-50));
  assert.equal(c.values(1).filter((v) => v.startsWith("stale")).length, 0);
});

Deno.test("an acknowledgement leaves in the same Ready as the entries it acknowledges", () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  c.tick(2);
  let checked = 0;
  c.onReady = (id, rd) => {
    if (id !== 2) return;
    for (const m of rd.messages) {
      if (m.type !== "appResp" || m.reject) continue;
      const stored = c.storages.get(2)!.lastIndex();
      // The storage already holds them: the app persists before sending.
      assert.ok(stored >= m.index);
      checked++;
    }
  };
  c.node(1).propose(text("a"));
  c.settle();
  assert.ok(checked > 0);
});

Deno.test("ready() twice without advance() is an error", () => {
  const storage = new MemoryStorage();
  const n = new RawNode({
    id: 1,
    peers: [1],
    storage,
    electionTick: 10,
    heartbeatTick: 1,
    random: seeded(1),
  });
  assert.ok(n.hasReady());
  const rd = n.ready();
  assert.throws(() => n.ready(), (e) => isRaftError(e, "invariant"));
  storage.append(rd.entries); // persisted before advance, as the contract says
  if (rd.hardState) storage.setHardState(rd.hardState);
  n.advance();
});

Deno.test("proposals without a leader are dropped with a typed error", () => {
  const c = new TestCluster([1, 2, 3]);
  assert.throws(
    () => c.node(1).propose(text("x")),
    (e) => isRaftError(e, "proposal_dropped"),
  );
});

Deno.test("ReadIndex on the leader waits for a heartbeat quorum", () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  c.node(1).propose(text("a"));
  c.settle();
  const states: { index: number; ctx: string }[] = [];
  c.onReady = (id, rd) => {
    if (id === 1) states.push(...rd.readStates);
  };
  c.drop = (m) => m.from !== 1 && m.type === "heartbeatResp";
  c.node(1).readIndex("r1");
  c.settle();
  assert.equal(states.length, 0, "answered without confirmation");
  c.drop = () => false;
  c.node(1).readIndex("r2");
  c.settle();
  assert.deepEqual(states.map((s) => s.ctx), ["r1", "r2"]);
  assert.equal(states[0]!.index, c.node(1).raft.log.committed);
});

Deno.test("ReadIndex on a follower is answered through the leader", () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  c.node(1).propose(text("a"));
  c.settle();
  const states: string[] = [];
  c.onReady = (id, rd) => {
    if (id === 3) states.push(...rd.readStates.map((s) => s.ctx));
  };
  c.node(3).readIndex("f");
  c.settle();
  assert.deepEqual(states, ["f"]);
});

Deno.test("a lease read is answered at once while the lease holds, not after it lapses", () => {
  const c = new TestCluster([1, 2, 3], {
    readOnly: "lease",
    leaseDriftTicks: 2,
  });
  c.elect(1);
  c.tick(2);
  assert.ok(c.node(1).leaseValid());
  const states: string[] = [];
  c.onReady = (id, rd) => {
    if (id === 1) states.push(...rd.readStates.map((s) => s.ctx));
  };
  // Heartbeat responses stop: the lease must lapse before electionTick.
  c.drop = (m) => m.type === "heartbeatResp" || m.type === "appResp";
  c.node(1).readIndex("now");
  c.settle();
  assert.deepEqual(states, ["now"], "lease read not immediate");
  c.tick(8, [1]);
  assert.equal(
    c.node(1).leaseValid(),
    false,
    "lease outlived electionTick - drift",
  );
  c.node(1).readIndex("later");
  c.settle();
  assert.deepEqual(states, ["now"], "answered from an expired lease");
});

Deno.test("leadership transfer hands over with TimeoutNow", () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  c.node(1).propose(text("a"));
  c.settle();
  c.node(1).transferLeadership(3);
  c.settle();
  assert.equal(c.node(3).raft.role, "leader");
  assert.equal(c.node(1).raft.role, "follower");
  assert.ok(c.sent.some((m) => m.type === "timeoutNow" && m.to === 3));
});

Deno.test("a follower asked to transfer forwards the request to the leader", () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  c.tick(2);
  c.node(2).transferLeadership(2);
  c.settle();
  assert.equal(c.node(2).raft.role, "leader");
});

Deno.test("a learner receives the log but neither votes nor counts for commit", () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  c.add(4, undefined);
  c.node(1).proposeConfChange({ type: "addLearner", nodeId: 4 });
  c.settle();
  c.tick(3);
  c.node(1).propose(text("a"));
  c.settle();
  c.tick(3);
  assert.deepEqual(c.values(4), ["a"]);
  assert.deepEqual(c.node(1).confState(), { voters: [1, 2, 3], learners: [4] });
  assert.equal(c.node(4).raft.promotable(), false);
  // With two voters down, the learner cannot help commit.
  c.drop = (m) => m.to === 2 || m.to === 3 || m.from === 2 || m.from === 3;
  c.node(1).propose(text("b"));
  c.settle();
  assert.deepEqual(c.values(4), ["a"]);
  // Promote it: now 1 + 4 are not yet a majority of 4 voters, restore links.
  c.drop = () => false;
  c.tick(2);
  c.node(1).proposeConfChange({ type: "addNode", nodeId: 4 });
  c.settle();
  c.tick(2);
  assert.deepEqual(c.node(4).confState().voters, [1, 2, 3, 4]);
});

Deno.test("a second membership change while one is pending becomes a no-op", () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  c.drop = (m) => m.from === 1 && m.type === "app";
  c.node(1).proposeConfChange({ type: "addLearner", nodeId: 4 });
  c.node(1).proposeConfChange({ type: "addLearner", nodeId: 5 });
  c.drop = () => false;
  c.tick(3);
  assert.deepEqual(c.node(1).confState().learners, [4]);
});

Deno.test("removing the leader makes it step down and the rest elect a new one", () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  c.node(1).proposeConfChange({ type: "removeNode", nodeId: 1 });
  c.settle();
  c.tick(3);
  assert.notEqual(c.node(1).raft.role, "leader");
  c.tick(40, [2, 3]);
  const leaders = [2, 3].filter((i) => c.node(i).raft.role === "leader");
  assert.equal(leaders.length, 1);
  assert.deepEqual(c.node(leaders[0]!).confState().voters, [2, 3]);
});

Deno.test("flow control caps appends in flight per follower", () => {
  const c = new TestCluster([1, 2], { maxInflightMsgs: 2, maxSizePerMsg: 0 });
  c.elect(1);
  c.tick(2);
  c.drop = (m) => m.type === "appResp";
  const before =
    c.sent.filter((m) => m.type === "app" && m.entries.length > 0).length;
  for (let i = 0; i < 10; i++) {
    c.node(1).propose(text(`p${i}`));
    c.settle();
  }
  const apps =
    c.sent.filter((m) => m.type === "app" && m.entries.length > 0).length -
    before;
  assert.equal(apps, 2);
});

Deno.test("a leader without quorum stops accepting past the uncommitted-bytes bound", () => {
  const c = new TestCluster([1, 2, 3], { maxUncommittedEntriesSize: 100 });
  c.elect(1);
  c.drop = (m) => m.from === 1;
  let accepted = 0;
  let dropped = 0;
  for (let i = 0; i < 50; i++) {
    try {
      c.node(1).propose(new Uint8Array(10));
      accepted++;
    } catch (e) {
      assert.ok(isRaftError(e, "proposal_dropped"));
      dropped++;
    }
  }
  assert.ok(accepted <= 10, `accepted ${accepted}`);
  assert.ok(dropped >= 40);
});

Deno.test("proposals are batched into one append per follower per Ready", () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  c.tick(2);
  const before = c.sent.length;
  c.node(1).proposeBatch([text("a"), text("b"), text("c")]);
  c.node(1).propose(text("d"));
  c.drainReadys();
  const apps = c.sent.slice(before).filter((m) => m.type === "app");
  assert.equal(apps.length, 2);
  for (const m of apps) if (m.type === "app") assert.equal(m.entries.length, 4);
});

Deno.test("a follower's forwarded proposal comes back as an (index, term, id) echo and saves bytes", () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  c.tick(2);
  const payload = new Uint8Array(1000).fill(7);
  c.node(2).propose(payload);
  c.settle();
  c.tick(2);
  const echoes = c.sent.filter((m) =>
    m.type === "app" && m.to === 2 &&
    m.entries.some((e) => e.echo !== undefined)
  );
  assert.ok(echoes.length > 0, "no echo sent");
  assert.equal(c.node(1).status().stats.echoBytesSaved, 1000);
  for (const i of [1, 2, 3]) {
    const e = c.applied.get(i)!.find((x) => x.data.length === 1000);
    assert.ok(e, `node ${i} lacks the full payload`);
    assert.deepEqual(e.data, payload);
  }
});

Deno.test("an echo the follower cannot resolve is resent whole", () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  c.tick(2);
  // The leader believes node 2 proposed it, but node 2 never did.
  c.drop = (m) => m.type === "prop";
  c.node(2).propose(text("lost"));
  c.settle();
  c.drop = () => false;
  c.node(1).raft.step({
    type: "prop",
    from: 2,
    to: 1,
    term: 0,
    entries: [{ term: 0, index: 0, type: "normal", data: text("other") }],
    proposalIds: [123456],
  });
  c.settle();
  c.tick(3);
  assert.ok(c.sent.some((m) => m.type === "appResp" && m.echoMiss));
  assert.deepEqual(c.values(2), ["other"]);
});

Deno.test("structured events record role changes and votes", () => {
  const c = new TestCluster([1, 2, 3]);
  const kinds: string[] = [];
  c.onReady = (_, rd) => kinds.push(...rd.events.map((e) => e.kind));
  c.elect(1);
  assert.ok(kinds.includes("role"));
  assert.ok(kinds.includes("vote"));
});

Deno.test("invalid timing configuration is rejected with a typed error", () => {
  assert.throws(
    () =>
      new RawNode({
        id: 1,
        storage: new MemoryStorage(),
        electionTick: 1,
        heartbeatTick: 1,
        random: Math.random,
      }),
    (e) => isRaftError(e, "invalid_config"),
  );
});

Deno.test("a snapshot goes out in chunks and resumes after a lost chunk", () => {
  const c = new TestCluster([1, 2, 3], { snapshotChunkBytes: 4 });
  c.elect(1);
  c.tick(2);
  c.drop = (m) => m.to === 3 || m.from === 3;
  for (let i = 0; i < 5; i++) c.node(1).propose(text(`v${i}`));
  c.settle();
  c.tick(2, [1, 2]);
  // The leader snapshots and compacts past what node 3 has.
  const s1 = c.storages.get(1)!;
  const applied = c.node(1).raft.log.applied;
  const state = text("0123456789abcdefghij"); // 20 bytes: 5 chunks
  s1.createSnapshot(applied, c.node(1).confState(), state);
  s1.compact(applied);
  // Lose the second chunk once.
  let lost = false;
  c.drop = (m) => {
    if (m.type === "snap" && m.offset === 4 && !lost) {
      lost = true;
      return true;
    }
    return false;
  };
  let restored: Uint8Array | undefined;
  c.onReady = (id, rd) => {
    if (id === 3 && rd.snapshot) restored = rd.snapshot.data;
  };
  c.tick(6);
  assert.ok(lost, "no chunk was lost");
  assert.deepEqual(restored, state);
  const offsets = c.sent.filter((m) => m.type === "snap").map((m) =>
    m.type === "snap" ? m.offset : -1
  );
  // The lost chunk was sent again (dropped messages are not in `sent`).
  assert.ok(offsets.includes(4), "chunk 2 not resent");
  assert.ok(offsets.length >= 5);
  assert.equal(c.node(3).raft.log.committed, c.node(1).raft.log.committed);
  c.node(1).propose(text("after"));
  c.settle();
  c.tick(2);
  assert.deepEqual(c.values(3).slice(-1), ["after"]);
});

Deno.test("flow control also caps payload bytes in flight per follower", () => {
  const c = new TestCluster([1, 2], {
    maxInflightMsgs: 100,
    maxInflightBytes: 250,
    maxSizePerMsg: 0,
  });
  c.elect(1);
  c.tick(2);
  c.drop = (m) => m.type === "appResp";
  const before = c.sent.length;
  for (let i = 0; i < 10; i++) {
    c.node(1).propose(new Uint8Array(100));
    c.settle();
  }
  const bytes = c.sent.slice(before).reduce(
    (n, m) =>
      n +
      (m.type === "app" ? m.entries.reduce((k, e) => k + e.data.length, 0) : 0),
    0,
  );
  // Sending stops once 250 bytes are out: the third message crosses it.
  assert.equal(bytes, 300);
});

Deno.test("a read on a new leader waits until it has committed an entry of its term", () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  c.tick(2);
  // Node 2 takes over; its no-op cannot commit yet.
  c.drop = (m) => m.from === 2 && m.type === "app";
  c.elect(2);
  const states: { index: number; ctx: string }[] = [];
  c.onReady = (id, rd) => {
    if (id === 2) states.push(...rd.readStates);
  };
  c.node(2).readIndex("early");
  c.settle();
  assert.equal(states.length, 0, "answered before committing in its term");
  c.drop = () => false;
  c.tick(3);
  assert.deepEqual(states.map((s) => s.ctx), ["early"]);
  assert.equal(c.node(2).raft.log.term(states[0]!.index), c.node(2).raft.term);
});

Deno.test("a node restarted from its storage keeps term and vote and replays only unapplied entries", () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  for (const v of ["a", "b", "c"]) c.node(1).propose(text(v));
  c.settle();
  c.tick(2);
  const before = c.node(2).raft;
  const storage = c.storages.get(2)!;
  const appliedBefore = c.applied.get(2)!;
  const restartAt = appliedBefore[appliedBefore.length - 2]!.index;
  const restarted = new RawNode({
    id: 2,
    storage,
    electionTick: 10,
    heartbeatTick: 1,
    random: seeded(9),
    applied: restartAt,
  });
  assert.equal(restarted.raft.term, before.term);
  assert.equal(restarted.raft.vote, before.vote);
  assert.deepEqual(restarted.confState(), { voters: [1, 2, 3], learners: [] });
  const rd = restarted.ready();
  assert.deepEqual(
    rd.committedEntries.map((e) => e.index),
    [restartAt + 1],
    "replayed entries it had applied, or skipped one it had not",
  );
  assert.equal(rd.entries.length, 0, "asked to persist what is already stored");
});

Deno.test("a malformed membership change is refused with a typed error", () => {
  const c = new TestCluster([1]);
  c.elect(1);
  assert.throws(
    () => c.node(1).proposeConfChange({ type: "addNode", nodeId: 0 }),
    (e) => isRaftError(e, "invalid_config"),
  );
  assert.throws(
    () =>
      c.node(1).proposeConfChange(
        { type: "promote", nodeId: 2 } as unknown as Parameters<
          RawNode["proposeConfChange"]
        >[0],
      ),
    (e) => isRaftError(e, "invalid_config"),
  );
});

Deno.test("committed entries are paged across Readys by maxCommittedSizePerReady", () => {
  const c = new TestCluster([1], { maxCommittedSizePerReady: 250 });
  c.elect(1);
  const sizes: number[] = [];
  c.onReady = (_, rd) => {
    const n = rd.committedEntries.filter((e) => e.data.length === 100).length;
    if (n > 0) sizes.push(n);
  };
  c.node(1).proposeBatch(Array.from({ length: 10 }, () => new Uint8Array(100)));
  c.settle();
  assert.equal(sizes.reduce((a, b) => a + b, 0), 10);
  assert.ok(
    sizes.length >= 4,
    `one Ready carried ${Math.max(...sizes)} entries`,
  );
  assert.ok(Math.max(...sizes) <= 3);
});

Deno.test("a snapshot transfer interrupted by a leader change restarts cleanly with the new leader's snapshot", () => {
  const c = new TestCluster([1, 2, 3], { snapshotChunkBytes: 4 });
  c.elect(1);
  c.tick(2);
  c.drop = (m) => m.to === 3 || m.from === 3;
  for (let i = 0; i < 5; i++) c.node(1).propose(text(`v${i}`));
  c.settle();
  c.tick(2, [1, 2]);
  const applied = c.node(1).raft.log.applied;
  assert.equal(c.node(2).raft.log.applied, applied);
  // Both snapshot the same index, but their bytes differ (a serialization
  // that is not byte-identical across replicas).
  const a = text("AAAAAAAAAAAAAAAAAAAA");
  const b = text("BBBBBBBBBBBBBBBBBBBB");
  for (const [id, data] of [[1, a], [2, b]] as const) {
    const s = c.storages.get(id)!;
    s.createSnapshot(applied, c.node(id).confState(), data);
    s.compact(applied);
  }
  // Node 3 gets the first 8 bytes from leader 1, then 1 is cut off.
  c.drop = (m) => m.type === "snap" && m.offset >= 8;
  c.tick(2);
  const got = c.sent.filter((m) => m.type === "snap" && m.to === 3);
  assert.ok(got.length >= 2, "the transfer did not start");
  let restored: Uint8Array | undefined;
  c.onReady = (id, rd) => {
    if (id === 3 && rd.snapshot) restored = rd.snapshot.data;
  };
  c.drop = (m) => m.to === 1 || m.from === 1;
  c.tick(60, [2, 3]);
  assert.equal(c.node(2).raft.role, "leader");
  assert.deepEqual(restored, b, "spliced two leaders' snapshots");
  assert.deepEqual(c.storages.get(3)!.snapshot().data, b);
});
