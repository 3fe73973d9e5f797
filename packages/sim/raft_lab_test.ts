/**
 * The MIT 6.5840 Raft lab tests (2A–2D), reproduced in the deterministic
 * simulator. Node ids are 1..n; `at(base, k)` is the lab's `(base + k) % n`.
 */
import assert from "node:assert/strict";
import {
  RecordingCommandMachine,
  ReplicaCluster,
  type ReplicaClusterOptions,
} from "./replica_cluster.ts";
import { runSeededAsync, testSeeds } from "./seeded_test_runner.ts";

const FILE = "packages/sim/raft_lab_test.ts";
// Each test runs one seed in the default suite (twenty, or ten for Figure
// 8, under STRATA_LONG=1): on production ReplicatedNodes a seed costs
// several times what it did on the raft core alone, which ran two or three.

function lab(
  name: string,
  seeds: number[],
  fn: (seed: number) => Promise<void>,
): void {
  Deno.test(name, () => runSeededAsync(FILE, name, seeds, fn));
}

function cluster(
  seed: number,
  nodes: number,
  reliable: boolean,
  extra: Partial<ReplicaClusterOptions> = {},
): ReplicaCluster {
  const c = new ReplicaCluster({ seed, nodes, ...extra });
  c.setReliable(reliable);
  return c;
}

function at(c: ReplicaCluster, base: number, k: number): number {
  const n = c.nodes.size;
  return ((base - 1 + k) % n + n) % n + 1;
}

const ET = 1000; // the lab's RaftElectionTimeout, ms

function rand(c: ReplicaCluster): string {
  return String(c.prng.nextU32());
}

// ---- 2A: leader election ----

lab(
  "2A initial election elects one leader and keeps the term when nothing fails",
  testSeeds(1, 20),
  async (seed) => {
    const c = cluster(seed, 3, true);
    await c.checkOneLeader();
    await c.run(50);
    const term1 = c.checkTerms();
    assert.ok(term1 >= 1);
    await c.run(2 * ET);
    assert.equal(c.checkTerms(), term1, "term changed with no failures");
    await c.checkOneLeader();
  },
);

lab(
  "2A re-election replaces a disconnected leader and needs a majority",
  testSeeds(1, 20),
  async (seed) => {
    const c = cluster(seed, 3, true);
    const leader1 = await c.checkOneLeader();
    c.disconnect(leader1);
    await c.checkOneLeader();
    c.connect(leader1);
    const leader2 = await c.checkOneLeader();
    c.disconnect(leader2);
    c.disconnect(at(c, leader2, 1));
    await c.run(2 * ET);
    c.checkNoLeader();
    c.connect(at(c, leader2, 1));
    await c.checkOneLeader();
    c.connect(leader2);
    await c.checkOneLeader();
  },
);

lab(
  "2A many elections with 7 nodes keep electing a single leader",
  testSeeds(1, 20),
  async (seed) => {
    const c = cluster(seed, 7, true);
    await c.checkOneLeader();
    for (let iter = 0; iter < 10; iter++) {
      const ids = [1, 2, 3, 4, 5, 6, 7];
      const gone = [0, 1, 2].map(() =>
        ids.splice(c.prng.int(ids.length), 1)[0]!
      );
      for (const g of gone) c.disconnect(g);
      await c.checkOneLeader();
      for (const g of gone) c.connect(g);
    }
    await c.checkOneLeader();
  },
);

// ---- 2B: log agreement ----

lab(
  "2B basic agree commits successive commands at successive indexes",
  testSeeds(1, 20),
  async (seed) => {
    const c = cluster(seed, 3, true);
    let prev = -1;
    for (let i = 1; i <= 3; i++) {
      const idx = await c.one(String(i * 100), 3, false);
      if (prev !== -1) assert.equal(idx, prev + 1);
      prev = idx;
    }
  },
);

lab(
  "2B RPC bytes: each entry is sent to each peer once",
  testSeeds(1, 20),
  async (seed) => {
    const c = cluster(seed, 3, true);
    await c.one("99", 3, false);
    const before = c.raftBytes;
    let sent = 0;
    for (let i = 0; i < 10; i++) {
      const cmd = "x".repeat(5000) + i;
      await c.one(cmd, 3, false);
      sent += cmd.length;
    }
    const got = c.raftBytes - before;
    assert.ok(got >= 2 * sent, `sent ${got} bytes, less than the payloads`);
    assert.ok(got <= 2 * sent + 50_000, `too many bytes: ${got} for ${sent}`);
  },
);

lab(
  "2B follower failure: agreement continues with a majority and stops without one",
  testSeeds(1, 20),
  async (seed) => {
    const c = cluster(seed, 3, true);
    await c.one("101", 3, false);
    const leader1 = await c.checkOneLeader();
    c.disconnect(at(c, leader1, 1));
    await c.one("102", 2, false);
    await c.run(ET);
    await c.one("103", 2, false);
    const leader2 = await c.checkOneLeader();
    c.disconnect(at(c, leader2, 1));
    c.disconnect(at(c, leader2, 2));
    const r = c.start(leader2, "104");
    assert.ok(r.isLeader);
    await c.run(2 * ET);
    assert.equal(c.nCommitted(r.index)[0], 0, "committed without a majority");
  },
);

lab(
  "2B leader failure: a new leader takes over and a lone old leader commits nothing",
  testSeeds(1, 20),
  async (seed) => {
    const c = cluster(seed, 3, true);
    await c.one("101", 3, false);
    const leader1 = await c.checkOneLeader();
    c.disconnect(leader1);
    await c.one("102", 2, false);
    await c.run(ET);
    await c.one("103", 2, false);
    const leader2 = await c.checkOneLeader();
    c.disconnect(leader2);
    let index = -1;
    for (const id of c.nodes.keys()) {
      const r = c.start(id, "104");
      if (r.isLeader) index = Math.max(index, r.index);
    }
    await c.run(2 * ET);
    if (index > 0) assert.equal(c.nCommitted(index)[0], 0);
  },
);

lab(
  "2B fail agree: a reconnected follower catches up",
  testSeeds(1, 20),
  async (seed) => {
    const c = cluster(seed, 3, true);
    await c.one("101", 3, false);
    const leader = await c.checkOneLeader();
    c.disconnect(at(c, leader, 1));
    await c.one("102", 2, false);
    await c.one("103", 2, false);
    await c.run(ET);
    await c.one("104", 2, false);
    await c.one("105", 2, false);
    c.connect(at(c, leader, 1));
    await c.one("106", 3, true);
    await c.run(ET);
    await c.one("107", 3, true);
  },
);

lab(
  "2B fail no agree: no commit without a majority, then recovery",
  testSeeds(1, 20),
  async (seed) => {
    const c = cluster(seed, 5, true);
    await c.one("10", 5, false);
    const leader = await c.checkOneLeader();
    for (const k of [1, 2, 3]) c.disconnect(at(c, leader, k));
    const r = c.start(leader, "20");
    assert.ok(r.isLeader);
    await c.run(2 * ET);
    assert.equal(c.nCommitted(r.index)[0], 0);
    for (const k of [1, 2, 3]) c.connect(at(c, leader, k));
    const leader2 = await c.checkOneLeader();
    const r2 = c.start(leader2, "30");
    assert.ok(r2.isLeader);
    await c.one("1000", 5, true);
  },
);

lab("2B concurrent starts all commit", testSeeds(1, 20), async (seed) => {
  const c = cluster(seed, 3, true);
  const leader = await c.checkOneLeader();
  const idx: number[] = [];
  const r0 = c.start(leader, "1");
  assert.ok(r0.isLeader);
  idx.push(r0.index);
  for (let i = 2; i <= 5; i++) {
    const r = c.start(leader, String(i));
    if (r.isLeader) idx.push(r.index);
  }
  const values = new Set<string>();
  for (const i of idx) {
    const v = await c.wait(i, 3, r0.term);
    if (v !== undefined) values.add(v);
  }
  assert.ok(values.size >= 1);
  for (const v of values) assert.ok(["1", "2", "3", "4", "5"].includes(v));
});

lab(
  "2B rejoin of a partitioned leader discards its uncommitted entries",
  testSeeds(1, 20),
  async (seed) => {
    const c = cluster(seed, 3, true);
    await c.one("101", 3, true);
    const leader1 = await c.checkOneLeader();
    c.disconnect(leader1);
    c.start(leader1, "102");
    c.start(leader1, "103");
    c.start(leader1, "104");
    await c.one("103", 2, true);
    const leader2 = await c.checkOneLeader();
    c.disconnect(leader2);
    c.connect(leader1);
    await c.one("104", 2, true);
    c.connect(leader2);
    await c.one("105", 3, true);
  },
);

lab(
  "2B backup skips quickly over 50 divergent entries",
  testSeeds(1, 20),
  async (seed) => {
    const c = cluster(seed, 5, true);
    await c.one(rand(c), 5, true);
    const leader1 = await c.checkOneLeader();
    for (const k of [2, 3, 4]) c.disconnect(at(c, leader1, k));
    for (let i = 0; i < 50; i++) c.start(leader1, rand(c));
    await c.run(ET / 2);
    c.disconnect(leader1);
    c.disconnect(at(c, leader1, 1));
    for (const k of [2, 3, 4]) c.connect(at(c, leader1, k));
    for (let i = 0; i < 50; i++) await c.one(rand(c), 3, true);
    const leader2 = await c.checkOneLeader();
    let other = at(c, leader1, 2);
    if (leader2 === other) other = at(c, leader2, 1);
    c.disconnect(other);
    for (let i = 0; i < 50; i++) c.start(leader2, rand(c));
    await c.run(ET / 2);
    for (const id of c.nodes.keys()) c.disconnect(id);
    c.connect(leader1);
    c.connect(at(c, leader1, 1));
    c.connect(other);
    const rejectsBefore = c.appRejects;
    for (let i = 0; i < 50; i++) await c.one(rand(c), 3, true);
    for (const id of c.nodes.keys()) c.connect(id);
    await c.one(rand(c), 5, true);
    // Term-wise backup needs a handful of round trips, not one per entry.
    assert.ok(
      c.appRejects - rejectsBefore < 40,
      `${c.appRejects - rejectsBefore} rejections to back up`,
    );
  },
);

lab(
  "2B count: elections, agreement and idle use few messages",
  testSeeds(1, 20),
  async (seed) => {
    const c = cluster(seed, 3, true);
    await c.checkOneLeader();
    const total1 = c.rpcCount();
    assert.ok(total1 > 1 && total1 <= 30, `election used ${total1} RPCs`);
    let ok = false;
    for (let tries = 0; tries < 5 && !ok; tries++) {
      const leader = await c.checkOneLeader();
      const before = c.rpcCount();
      const r = c.start(leader, "1");
      if (!r.isLeader) continue;
      const iters = 10;
      let failed = false;
      for (let i = 1; i < iters + 2; i++) {
        const x = c.start(leader, String(100 + i));
        if (!x.isLeader || x.term !== r.term) failed = true;
      }
      for (let i = r.index; i <= r.index + iters; i++) {
        if (await c.wait(i, 3, r.term) === undefined) failed = true;
      }
      if (failed) continue;
      const used = c.rpcCount() - before;
      assert.ok(used <= (iters + 1 + 3) * 3, `agreement used ${used} RPCs`);
      ok = true;
    }
    assert.ok(ok, "term changed too often");
    await c.run(ET);
    const idleBefore = c.rpcCount();
    await c.run(1000);
    const idle = c.rpcCount() - idleBefore;
    assert.ok(idle <= 3 * 20, `idle used ${idle} RPCs in 1 s`);
  },
);

// ---- 2C: persistence ----

lab(
  "2C persist 1: state survives crashes of all, the leader and a follower",
  testSeeds(1, 20),
  async (seed) => {
    const c = cluster(seed, 3, true);
    await c.one("11", 3, true);
    for (const id of c.nodes.keys()) c.crash(id);
    for (const id of c.nodes.keys()) c.restart(id);
    await c.one("12", 3, true);
    const leader1 = await c.checkOneLeader();
    c.restart(leader1);
    await c.one("13", 3, true);
    const leader2 = await c.checkOneLeader();
    c.crash(leader2);
    await c.one("14", 2, true);
    c.restart(leader2);
    const i3 = at(c, await c.checkOneLeader(), 1);
    c.crash(i3);
    await c.one("15", 2, true);
    c.restart(i3);
    await c.one("16", 3, true);
  },
);

lab(
  "2C persist 2: repeated crashes of majorities keep committed entries",
  testSeeds(1, 20),
  async (seed) => {
    const c = cluster(seed, 5, true);
    let index = 1;
    for (let iters = 0; iters < 5; iters++) {
      await c.one(String(10 + index++), 5, true);
      const leader1 = await c.checkOneLeader();
      c.crash(at(c, leader1, 1));
      c.crash(at(c, leader1, 2));
      await c.one(String(10 + index++), 3, true);
      c.crash(leader1);
      c.crash(at(c, leader1, 3));
      c.crash(at(c, leader1, 4));
      c.restart(at(c, leader1, 1));
      c.restart(at(c, leader1, 2));
      await c.run(ET);
      c.restart(at(c, leader1, 3));
      await c.one(String(10 + index++), 3, true);
      c.restart(at(c, leader1, 4));
      c.restart(leader1);
    }
    await c.one("1000", 5, true);
  },
);

lab(
  "2C persist 3: a partitioned leader and follower crash and recover",
  testSeeds(1, 20),
  async (seed) => {
    const c = cluster(seed, 3, true);
    await c.one("101", 3, false);
    const leader = await c.checkOneLeader();
    c.disconnect(at(c, leader, 2));
    await c.one("102", 2, false);
    c.crash(leader);
    c.crash(at(c, leader, 1));
    c.connect(at(c, leader, 2));
    c.restart(leader);
    await c.one("103", 2, true);
    c.restart(at(c, leader, 1));
    await c.one("104", 3, true);
  },
);

async function figure8(
  c: ReplicaCluster,
  iterations: number,
  unreliable: boolean,
): Promise<void> {
  const n = c.nodes.size;
  await c.one(rand(c), 1, true);
  let nup = n;
  for (let iters = 0; iters < iterations; iters++) {
    if (unreliable && iters === Math.floor(iterations / 5)) {
      c.setLongReordering(true);
    }
    let leader = -1;
    for (const id of c.nodes.keys()) {
      const node = c.node(id);
      const up = unreliable ? c.connected(id) : node.alive;
      if (!up) continue;
      if (c.start(id, rand(c)).isLeader) leader = id;
    }
    if (c.prng.int(1000) < 100) await c.run(c.prng.int(ET / 2));
    else await c.run(c.prng.int(13));
    if (leader !== -1 && (!unreliable || c.prng.int(1000) < ET / 2)) {
      if (unreliable) c.disconnect(leader);
      else c.crash(leader);
      nup--;
    }
    if (nup < 3) {
      const s = c.prng.int(n) + 1;
      const node = c.node(s);
      if (unreliable ? !c.connected(s) : !node.alive) {
        if (unreliable) c.connect(s);
        else c.restart(s);
        nup++;
      }
    }
  }
  for (const id of c.nodes.keys()) {
    if (unreliable) c.connect(id);
    else if (!c.node(id).alive) c.restart(id);
  }
  c.setLongReordering(false);
  c.setReliable(true);
  await c.one(rand(c), n, true);
}

lab(
  "2C figure 8: entries of old terms are never committed by counting replicas",
  testSeeds(1, 10),
  async (seed) => {
    await figure8(cluster(seed, 5, true), 1000, false);
  },
);

lab(
  "2C unreliable agree commits despite loss and delay",
  testSeeds(1, 20),
  async (seed) => {
    const c = cluster(seed, 5, false);
    for (let iters = 1; iters < 30; iters++) {
      for (let j = 0; j < 4; j++) await c.one(String(100 * iters + j), 1, true);
      await c.one(String(iters), 1, true);
    }
    c.setReliable(true);
    await c.one("100", 5, true);
  },
);

lab(
  "2C figure 8 unreliable: long reordering and partitions keep logs safe",
  testSeeds(1, 10),
  async (seed) => {
    await figure8(cluster(seed, 5, false), 1000, true);
  },
);

async function churn(c: ReplicaCluster, unreliable: boolean): Promise<void> {
  const n = c.nodes.size;
  const values: string[] = [];
  const t0 = c.scheduler.now;
  while (c.scheduler.now - t0 < 5000) {
    for (let k = 0; k < 3; k++) {
      const id = c.prng.int(n) + 1;
      const v = rand(c);
      if (c.node(id).alive && c.start(id, v).isLeader) values.push(v);
    }
    if (c.prng.int(1000) < 200) c.disconnect(c.prng.int(n) + 1);
    if (c.prng.int(1000) < 500) {
      const i = c.prng.int(n) + 1;
      if (!c.node(i).alive) c.restart(i);
      c.connect(i);
    }
    if (c.prng.int(1000) < 200) {
      const i = c.prng.int(n) + 1;
      if (c.node(i).alive) c.crash(i);
    }
    await c.run((ET * 7) / 10 * c.prng.float());
  }
  c.setReliable(true);
  for (const id of c.nodes.keys()) {
    if (!c.node(id).alive) c.restart(id);
    c.connect(id);
  }
  const last = await c.one(rand(c), n, true);
  // Every index up to the last agreed one is applied identically everywhere.
  for (let i = 1; i <= last; i++) c.nCommitted(i);
  if (unreliable) assert.ok(c.net.stats.dropped > 0);
}

lab(
  "2C reliable churn keeps every node's applied log identical",
  testSeeds(1, 20),
  async (seed) => {
    await churn(cluster(seed, 5, true), false);
  },
);

lab(
  "2C unreliable churn keeps every node's applied log identical",
  testSeeds(1, 20),
  async (seed) => {
    await churn(cluster(seed, 5, false), true);
  },
);

// ---- 2D: snapshots ----

const SNAP_EVERY = 10;

async function snapCommon(
  seed: number,
  disconnect: boolean,
  reliable: boolean,
  crash: boolean,
): Promise<void> {
  const n = 3;
  const c = cluster(seed, n, reliable, {
    snapshotInterval: SNAP_EVERY,
    snapshotChunkBytes: 64,
  });
  await c.one(rand(c), n, true);
  let leader1 = await c.checkOneLeader();
  for (let i = 0; i < 20; i++) {
    let victim = at(c, leader1, 1);
    let sender = leader1;
    if (i % 3 === 1) {
      sender = at(c, leader1, 1);
      victim = leader1;
    }
    if (disconnect) {
      c.disconnect(victim);
      await c.one(rand(c), n - 1, true);
    }
    if (crash) {
      c.crash(victim);
      await c.one(rand(c), n - 1, true);
    }
    const nn = SNAP_EVERY / 2 + c.prng.int(SNAP_EVERY);
    for (let k = 0; k < nn; k++) c.start(sender, rand(c));
    if (!disconnect && !crash) await c.one(rand(c), n, true);
    else await c.one(rand(c), n - 1, true);
    for (const node of c.nodes.values()) {
      assert.ok(
        node.logLength <= 8 * SNAP_EVERY,
        `log of ${node.id} holds ${node.logLength} entries: not compacted`,
      );
    }
    if (disconnect) {
      c.connect(victim);
      await c.one(rand(c), n, true);
      leader1 = await c.checkOneLeader();
    }
    if (crash) {
      c.restart(victim);
      await c.one(rand(c), n, true);
      leader1 = await c.checkOneLeader();
    }
  }
}

lab(
  "2D snapshot basic: logs are compacted while agreement continues",
  testSeeds(1, 20),
  async (seed) => {
    await snapCommon(seed, false, true, false);
  },
);

lab(
  "2D install snapshot: a disconnected follower catches up from a snapshot",
  testSeeds(1, 20),
  async (seed) => {
    await snapCommon(seed, true, true, false);
  },
);

lab(
  "2D install snapshot unreliable: chunked install survives loss",
  testSeeds(1, 20),
  async (seed) => {
    await snapCommon(seed, true, false, false);
  },
);

lab(
  "2D install snapshot crash: a crashed follower restarts from its snapshot",
  testSeeds(1, 20),
  async (seed) => {
    await snapCommon(seed, false, true, true);
  },
);

lab("2D install snapshot unreliable crash", testSeeds(1, 20), async (seed) => {
  await snapCommon(seed, false, false, true);
});

lab(
  "2D all crash: every node restarts from snapshot and log",
  testSeeds(1, 20),
  async (seed) => {
    const c = cluster(seed, 3, true, { snapshotInterval: SNAP_EVERY });
    await c.one(rand(c), 3, true);
    for (let i = 0; i < 5; i++) {
      const nn = SNAP_EVERY / 2 + c.prng.int(SNAP_EVERY);
      for (let k = 0; k < nn; k++) await c.one(rand(c), 3, true);
      const index1 = await c.one(rand(c), 3, true);
      for (const id of c.nodes.keys()) c.crash(id);
      for (const id of c.nodes.keys()) c.restart(id);
      const index2 = await c.one(rand(c), 3, true);
      assert.ok(index2 > index1, `index decreased from ${index1} to ${index2}`);
    }
  },
);

lab(
  "2D init: a restart right after a snapshot replays nothing twice",
  testSeeds(1, 20),
  async (seed) => {
    const c = cluster(seed, 3, true, { snapshotInterval: SNAP_EVERY });
    await c.one(rand(c), 3, true);
    for (let i = 0; i < SNAP_EVERY + 1; i++) await c.one(rand(c), 3, true);
    await c.run(100);
    for (const id of c.nodes.keys()) c.crash(id);
    for (const id of c.nodes.keys()) c.restart(id);
    await c.one(rand(c), 3, true);
    for (const id of c.nodes.keys()) c.crash(id);
    for (const id of c.nodes.keys()) c.restart(id);
    const idx = await c.one(rand(c), 3, true);
    for (const node of c.nodes.values()) {
      assert.ok(node.lastSnapshot > 0, `node ${node.id} never snapshotted`);
      assert.ok(node.sm instanceof RecordingCommandMachine);
      assert.ok(
        node.sm.appliedIndex >= idx,
        `node ${node.id} applied ${node.sm.appliedIndex} < ${idx}`,
      );
    }
  },
);
