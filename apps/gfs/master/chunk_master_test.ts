import assert from "node:assert/strict";
import { ChunkMaster, type HeartbeatReport } from "./chunk_master.ts";
import { MasterState } from "./master_state.ts";

const MiB = 2 ** 20;

function report(
  id: string,
  chunks: [number, number, number][] = [],
  capacity = 100 * MiB,
): HeartbeatReport {
  return {
    id,
    url: `http://${id}`,
    rack: "",
    capacityBytes: capacity,
    usedBytes: 0,
    load: 0,
    chunks,
    extend: [],
  };
}

function fileWithChunk(state: MasterState, path = "/f", length = 10): number {
  const c = state.apply({
    t: "create",
    path,
    mode: "upload",
    replication: 3,
    now: 0,
  });
  const id = c.t === "create" ? c.fileId : 0;
  const a = state.apply({ t: "allocate", path, fileId: id, index: 0, now: 0 });
  state.apply({ t: "complete", path, fileId: id, lengths: [length], now: 0 });
  return a.t === "allocate" ? a.handle : 0;
}

Deno.test("heartbeats teach locations; orphans, stale versions and wrong lengths are deleted", () => {
  const state = new MasterState();
  const h = fileWithChunk(state);
  const m = new ChunkMaster(state, { chunkBytes: MiB });
  const r1 = m.heartbeat(report("a", [[h, 1, 10], [999, 1, 5]]), 1000);
  assert.deepEqual(r1.reply.delete, [999]);
  assert.deepEqual(m.liveReplicas(h).map((s) => s.id), ["a"]);
  state.apply({ t: "bumpVersion", handle: h, version: 2 });
  const r2 = m.heartbeat(report("b", [[h, 1, 10]]), 1000);
  assert.deepEqual(r2.reply.delete, [h]);
  const r3 = m.heartbeat(report("c", [[h, 2, 7]]), 1000);
  assert.deepEqual(r3.reply.delete, [h]);
  const r4 = m.heartbeat(report("d", [[h, 3, 10]]), 1000);
  assert.deepEqual(r4.ops, [{ t: "bumpVersion", handle: h, version: 3 }]);
});

Deno.test("a silent server is declared dead and its chunks are re-replicated elsewhere", () => {
  const state = new MasterState();
  const h = fileWithChunk(state);
  const m = new ChunkMaster(state, {
    chunkBytes: MiB,
    deadAfterMs: 1000,
    maxMovesPerTick: 0,
  });
  for (const id of ["a", "b", "c"]) m.heartbeat(report(id, [[h, 1, 10]]), 0);
  m.heartbeat(report("d"), 0);
  for (const id of ["a", "b", "d"]) {
    m.heartbeat(report(id, id === "d" ? [] : [[h, 1, 10]]), 1500);
  }
  const plan = m.tick(1600);
  assert.deepEqual(plan.dead, ["c"]);
  assert.equal(plan.clones.length, 1);
  assert.equal(plan.clones[0]!.target, "d");
  assert.equal(m.health().underReplicated, 1);
  m.cloneDone(plan.clones[0]!, true, 1, 10, 1700);
  assert.equal(m.health().underReplicated, 0);
  assert.equal(m.inflight.length, 0);
});

Deno.test("garbage collection purges the trash after the delay and abandons stale pending uploads", () => {
  const state = new MasterState();
  fileWithChunk(state, "/old");
  state.apply({ t: "delete", path: "/old", now: 100 });
  state.apply({
    t: "create",
    path: "/pending",
    mode: "upload",
    replication: 3,
    now: 100,
  });
  const m = new ChunkMaster(state, {
    chunkBytes: MiB,
    gcDelayMs: 1000,
    pendingTimeoutMs: 5000,
  });
  assert.deepEqual(m.tick(500).ops, []);
  assert.deepEqual(m.tick(1200).ops, [{ t: "purge", path: "/.trash/100/old" }]);
  assert.deepEqual(m.tick(5200).ops.map((o) => o.t), ["purge", "abandon"]);
});

Deno.test("a lease is extended only for its own primary", () => {
  const state = new MasterState();
  const h = fileWithChunk(state);
  const m = new ChunkMaster(state, { chunkBytes: MiB, leaseMs: 1000 });
  m.leases.grant(h, "a", 1, 0);
  const other = m.heartbeat({ ...report("b"), extend: [h] }, 500);
  assert.deepEqual(other.reply.leases, []);
  const own = m.heartbeat({ ...report("a", [[h, 1, 10]]), extend: [h] }, 900);
  assert.equal(own.reply.leases[0]!.expiresAt, 1900);
  assert.equal(m.leases.get(h, 1500)?.primary, "a");
  assert.equal(m.leases.get(h, 2000), undefined);
});

Deno.test("placement of new chunks balances servers of different capacity by fraction used", () => {
  const m = new ChunkMaster(new MasterState(), {
    chunkBytes: MiB,
    maxRecentCreations: 1e9,
  });
  const caps = { a: 100, b: 200, c: 300, d: 400 };
  for (const [id, c] of Object.entries(caps)) {
    m.heartbeat(report(id, [], c * MiB), 0);
  }
  for (let i = 0; i < 200; i++) m.placeChunk(3, i);
  const f = [...m.servers.values()].map((s) =>
    s.reservedBytes / s.capacityBytes
  );
  const mean = f.reduce((a, b) => a + b) / f.length;
  assert.ok(Math.max(...f) / mean < 1.1, String(f));
});

Deno.test("a tick moves replicas off an over-full server and, once cloned, deletes the old copy", () => {
  const state = new MasterState();
  const handles: number[] = [];
  for (let i = 0; i < 6; i++) handles.push(fileWithChunk(state, `/f${i}`, MiB));
  const m = new ChunkMaster(state, {
    chunkBytes: MiB,
    rebalanceThreshold: 0.05,
    maxMovesPerTick: 2,
  });
  // "full" holds every chunk on a small disk; the others have room.
  const chunks = handles.map((h) => [h, 1, MiB] as [number, number, number]);
  m.heartbeat({ ...report("full", chunks, 8 * MiB), usedBytes: 6 * MiB }, 0);
  m.heartbeat({ ...report("a", chunks, 100 * MiB), usedBytes: 6 * MiB }, 0);
  m.heartbeat({ ...report("b", chunks, 100 * MiB), usedBytes: 6 * MiB }, 0);
  m.heartbeat({ ...report("c", [], 100 * MiB) }, 0);
  const plan = m.tick(100);
  assert.equal(plan.clones.length, 0);
  assert.equal(plan.moves.length, 2, "gradual: at most maxMovesPerTick");
  for (const mv of plan.moves) {
    assert.equal(mv.from, "full");
    assert.equal(mv.to, "c");
  }
  const mv = plan.moves[0]!;
  m.cloneDone(
    { handle: mv.handle, source: mv.from, target: mv.to },
    true,
    1,
    MiB,
    200,
  );
  const holders = m.liveReplicas(mv.handle).map((s) => s.id).sort();
  assert.deepEqual(holders, ["a", "b", "c"]);
  const reply = m.heartbeat({
    ...report("full", chunks, 8 * MiB),
    usedBytes: 6 * MiB,
  }, 300);
  assert.ok(reply.reply.delete.includes(mv.handle), "the old copy is deleted");
});

Deno.test("a clone onto a server once excluded from the chunk's version is kept (its old copy was stale, the clone is not)", () => {
  const state = new MasterState();
  const h = fileWithChunk(state);
  state.apply({ t: "bumpVersion", handle: h, version: 2 });
  const m = new ChunkMaster(state, { chunkBytes: MiB });
  for (const id of ["a", "b", "c"]) m.heartbeat(report(id), 1000);
  m.heartbeat(report("a", [[h, 2, 10]]), 1000);
  // b did not confirm version 2 in time: left out of it.
  m.exclude(h, "b", 2);
  assert.deepEqual(m.heartbeat(report("b", [[h, 2, 10]]), 1100).reply.delete, [
    h,
  ]);
  // Re-replication copies the chunk onto b.
  const done = m.cloneDone(
    { handle: h, source: "a", target: "b" },
    true,
    2,
    10,
    1200,
  );
  assert.deepEqual(done, { admit: false, move: false });
  assert.deepEqual(
    m.heartbeat(report("b", [[h, 2, 10]]), 1300).reply.delete,
    [],
  );
  assert.deepEqual(m.liveReplicas(h).map((s) => s.id).sort(), ["a", "b"]);
});

Deno.test("a new chunk is placed away from servers a client's write just failed through, and on them last when too few others fit", () => {
  const m = new ChunkMaster(new MasterState(), {
    chunkBytes: MiB,
    maxRecentCreations: 1e9,
  });
  // a has the most room: every chunk's primary while it is not avoided.
  const caps = { a: 400, b: 100, c: 100, d: 100 };
  for (const [id, c] of Object.entries(caps)) {
    m.heartbeat(report(id, [], c * MiB), 0);
  }
  assert.equal(m.placeChunk(3, 1)[0]!.id, "a");
  const away = m.placeChunk(3, 2, undefined, ["http://a"]).map((s) => s.id);
  assert.deepEqual(away.sort(), ["b", "c", "d"]);
  // Two avoided, two others: the third replica is an avoided one, last.
  const filled = m.placeChunk(3, 3, undefined, ["http://a", "http://b"])
    .map((s) => s.id);
  assert.deepEqual(filled.slice(0, 2).sort(), ["c", "d"]);
  assert.ok(["a", "b"].includes(filled[2]!), filled.join(","));
  // URLs the master does not know change nothing.
  assert.equal(m.placeChunk(3, 4, undefined, ["http://zz"])[0]!.id, "a");
});
