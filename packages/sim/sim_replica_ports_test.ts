import assert from "node:assert/strict";
import type { Entry, Message, Snapshot } from "@strata/raft";
import { isCorruptReplicaData } from "@strata/replication";
import { Prng } from "./prng.ts";
import { Scheduler } from "./scheduler.ts";
import { SimPeerNetwork } from "./sim_peer_network.ts";
import { SimProcess } from "./sim_process.ts";
import { SimReplicaDisk } from "./sim_replica_disk.ts";

const entry = (index: number): Entry => ({
  term: 1,
  index,
  type: "normal",
  data: new Uint8Array([index]),
});

Deno.test("sim disk: a write resolves once durable; a crash keeps a prefix of the writes in flight", async () => {
  const sched = new Scheduler();
  const proc = new SimProcess(sched, 0, 0);
  const disk = new SimReplicaDisk(sched, new Prng(3), { minMs: 5, maxMs: 5 });
  const s = disk.open(proc);
  let done = false;
  s.append([entry(1), entry(2)]).then(() => done = true);
  assert.equal(s.lastIndex, 2, "the page cache sees the write at once");
  await Promise.resolve();
  assert.equal(done, false);
  sched.runFor(5);
  await Promise.resolve();
  assert.equal(done, true);
  // Ten more writes in flight, then the power goes out.
  for (let i = 3; i <= 12; i++) s.append([entry(i)]);
  disk.crash();
  proc.crash();
  proc.restart();
  const after = await disk.open(proc).recover();
  const kept = after.entries.length;
  assert.ok(kept >= 2 && kept <= 12);
  assert.deepEqual(after.entries.map((e) => e.index), [
    ...Array.from({ length: kept }, (_, i) => i + 1),
  ]);
  assert.equal(disk.lostWrites, 12 - kept);
  assert.deepEqual(after.entries[0], entry(1));
});

Deno.test("sim disk: a torn last record is dropped by storage's record scan at recovery", async () => {
  let dropped = 0;
  for (let seed = 1; seed <= 20; seed++) {
    const sched = new Scheduler();
    const proc = new SimProcess(sched, 0, 0);
    const disk = new SimReplicaDisk(sched, new Prng(seed), {
      minMs: 5,
      maxMs: 5,
      tornWrite: 1,
    });
    const s = disk.open(proc);
    s.append([entry(1), entry(2)]);
    sched.runFor(5);
    await Promise.resolve();
    s.append([entry(3), entry(4), entry(5)]);
    disk.crash();
    proc.crash();
    proc.restart();
    const after = await disk.open(proc).recover();
    const kept = after.entries.map((e) => e.index);
    // Whole records before the cut survive; a cut one is never returned.
    assert.ok(kept.length >= 2, `${kept}`);
    assert.deepEqual(kept, kept.map((_, i) => i + 1));
    assert.deepEqual(after.entries.at(-1), entry(kept.length));
    dropped += disk.tornRecordsDropped;
    // The log goes on after the cut: recovery truncated the torn bytes.
    const next = kept.length + 1;
    disk.open(proc).append([entry(next)]);
    sched.runFor(5);
    await Promise.resolve();
    proc.crash();
    disk.crash();
    proc.restart();
    const again = await disk.open(proc).recover();
    assert.equal(again.entries.at(-1)!.index, next);
  }
  assert.ok(dropped > 0, "no crash left a partial record");
});

Deno.test("sim disk: a failed fsync rejects that write and every later one of the life; a restart clears it", async () => {
  const sched = new Scheduler();
  const proc = new SimProcess(sched, 0, 0);
  const disk = new SimReplicaDisk(sched, new Prng(1), {
    minMs: 1,
    maxMs: 1,
    fsyncFailure: 1,
  });
  const failures: Error[] = [];
  disk.onWriteFailure = (e) => failures.push(e);
  const s = disk.open(proc);
  const results: string[] = [];
  for (const i of [1, 2]) {
    s.append([entry(i)]).then(
      () => results.push("ok"),
      (e) => results.push(String(e.message)),
    );
  }
  sched.runFor(5);
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(results, [
    "EIO: fsync failed (simulated)",
    "EIO: fsync failed (simulated)",
  ]);
  assert.equal(failures.length, 1);
  proc.crash();
  disk.crash();
  proc.restart();
  const after = await disk.open(proc).recover();
  assert.deepEqual(after.entries, [], "nothing that failed is durable");
});

Deno.test("sim process: a paused process runs nothing until it resumes; a crashed one never runs its old callbacks", () => {
  const sched = new Scheduler();
  const p = new SimProcess(sched, 1000, 5000);
  const ran: string[] = [];
  const t = p.timers();
  t.setTimer(10, () => ran.push("timer"));
  p.pause();
  sched.runFor(50);
  assert.equal(ran.length, 0);
  assert.equal(
    p.clock.monotonic(),
    1050,
    "the monotonic clock runs while stopped",
  );
  p.resume();
  sched.runFor(1);
  assert.deepEqual(ran, ["timer"]);
  t.setTimer(10, () => ran.push("old life"));
  p.crash();
  p.restart();
  sched.runFor(50);
  assert.deepEqual(ran, ["timer"]);
  p.setClockRate(2);
  p.timers().setTimer(10, () => ran.push("fast"));
  sched.runFor(5);
  assert.deepEqual(ran, ["timer", "fast"], "a fast clock's 10 ms pass in 5");
});

Deno.test("sim network: stream links carry messages through the differential codec; a reset drops what was in flight", () => {
  const sched = new Scheduler();
  const procs = new Map([[1, new SimProcess(sched, 0, 0)], [
    2,
    new SimProcess(sched, 0, 0),
  ]]);
  const net = new SimPeerNetwork(sched, new Prng(1), procs, {
    mode: "stream",
    minDelayMs: 1,
    maxDelayMs: 5,
    loss: 0,
    duplicate: 0,
  });
  const got: Message[] = [];
  const a = net.endpoint(1);
  net.endpoint(2).listen((m) => got.push(m));
  const hb = (commit: number): Message => ({
    type: "heartbeat",
    from: 1,
    to: 2,
    term: 3,
    commit,
    seq: commit,
    sentAt: 100 + commit,
  });
  for (let i = 1; i <= 20; i++) a.send(hb(i), SimPeerNetwork.address(2));
  sched.runFor(100);
  assert.deepEqual(got.map((m) => (m as { commit: number }).commit), [
    ...Array.from({ length: 20 }, (_, i) => i + 1),
  ]);
  assert.ok(net.stats.differential >= 19, "later heartbeats went as diffs");
  a.send(hb(21), SimPeerNetwork.address(2));
  net.resetNode(2);
  a.send(hb(22), SimPeerNetwork.address(2));
  sched.runFor(100);
  assert.deepEqual(
    got.slice(20).map((m) => (m as { commit: number }).commit),
    [22],
  );
  net.cut(1, 2);
  a.send(hb(23), SimPeerNetwork.address(2));
  sched.runFor(100);
  assert.equal(got.length, 21);
});

Deno.test("sim disk: a bit flip or a hardstate cut short is refused at recovery (never applied, never cut as a torn tail); repaired, the log is whole", async () => {
  const refused = { flip: 0, hard: 0 };
  for (let seed = 1; seed <= 60; seed++) {
    const sched = new Scheduler();
    const proc = new SimProcess(sched, 0, 0);
    const disk = new SimReplicaDisk(sched, new Prng(seed), {
      minMs: 1,
      maxMs: 1,
    });
    const violations: string[] = [];
    disk.onRecoveryViolation = (m) => violations.push(m);
    const s = disk.open(proc);
    s.append([1, 2, 3, 4, 5, 6].map(entry));
    s.writeHardState({ term: 3, vote: 2, commit: 6 });
    sched.runFor(5);
    await Promise.resolve();
    proc.crash();
    disk.crash();
    const hard = seed % 4 === 0;
    assert.ok(hard ? disk.tearHardState() : disk.flipBit());
    assert.ok(disk.damaged);
    proc.restart();
    // Every flipped bit (the length fields of all but the last record
    // included: an intact record follows, so it is no torn tail) and every
    // cut hardstate is refused.
    await assert.rejects(
      disk.open(proc).recover(),
      hard ? /CodecError/ : /corrupt log record/,
    );
    if (hard) refused.hard++;
    else refused.flip++;
    disk.repair();
    const after = await disk.open(proc).recover();
    assert.deepEqual(after.entries, [1, 2, 3, 4, 5, 6].map(entry));
    assert.deepEqual(after.hardState, { term: 3, vote: 2, commit: 6 });
    assert.deepEqual(violations, []);
    assert.equal(disk.damaged, false);
  }
  assert.equal(refused.flip, 45);
  assert.equal(refused.hard, 15);
});

Deno.test("sim disk: a full disk (ENOSPC) refuses writes at once and keeps nothing of them", async () => {
  const sched = new Scheduler();
  const proc = new SimProcess(sched, 0, 0);
  const disk = new SimReplicaDisk(sched, new Prng(1), { minMs: 1, maxMs: 1 });
  const failures: string[] = [];
  disk.onWriteFailure = (e) => failures.push(e.message);
  const s = disk.open(proc);
  await Promise.all([s.append([entry(1)]), sched.runFor(2)]);
  disk.full = true;
  await assert.rejects(s.append([entry(2)]), /ENOSPC/);
  await assert.rejects(
    s.writeHardState({ term: 1, vote: 1, commit: 1 }),
    /ENOSPC/,
  );
  assert.equal(s.lastIndex, 1, "the refused append is not in the page cache");
  assert.equal(failures.length, 2);
  disk.full = false;
  const later = s.append([entry(2)]);
  sched.runFor(2);
  await later;
  proc.crash();
  disk.crash();
  proc.restart();
  assert.deepEqual(
    (await disk.open(proc).recover()).entries.map((e) => e.index),
    [1, 2],
  );
});

Deno.test("sim disk: a damaged newest snapshot is skipped for the older one while the log reaches back to it, else refused as corrupt data for good", async () => {
  const snap = (index: number): Snapshot => ({
    meta: { index, term: 1, confState: { voters: [1], learners: [] } },
    data: new TextEncoder().encode(`state at ${index}`),
  });
  for (const compact of [false, true]) {
    const sched = new Scheduler();
    const proc = new SimProcess(sched, 0, 0);
    const disk = new SimReplicaDisk(sched, new Prng(1), { minMs: 1, maxMs: 1 });
    const s = disk.open(proc);
    s.append(Array.from({ length: 20 }, (_, i) => entry(i + 1)));
    s.saveSnapshot(snap(5));
    s.saveSnapshot(snap(15));
    // Compacted through 10: the log no longer reaches back to snapshot 5.
    if (compact) s.compactPrefix(10);
    sched.runFor(100);
    await Promise.resolve();
    disk.crash();
    proc.crash();
    assert.ok(disk.damageSnapshot(new Prng(2)));
    proc.restart();
    const recovering = disk.open(proc).recover();
    if (!compact) {
      const r = await recovering;
      assert.equal(r.snapshot?.meta.index, 5, "fell back to the older one");
      assert.deepEqual(r.entries.map((e) => e.index)[0], 6);
      assert.equal(disk.snapshotFallbacks, 1);
      assert.equal(disk.lost, false);
    } else {
      const err = await recovering.then(() => undefined, (e) => e);
      assert.ok(isCorruptReplicaData(err), String(err));
      assert.match(String(err), /snapshot covers only through 5/);
      assert.equal(disk.lost, true);
      assert.equal(disk.refusedRecoveries, 1);
    }
  }
});
