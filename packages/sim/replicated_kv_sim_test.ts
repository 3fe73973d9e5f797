import assert from "node:assert/strict";
import {
  type ReplicatedSimResult,
  runReplicatedKvSimulation,
} from "./replicated_kv_sim.ts";
import { LONG, testSeeds } from "./seeded_test_runner.ts";

const FILE = "packages/sim/replicated_kv_sim_test.ts";

function report(r: ReplicatedSimResult, testName: string): never {
  console.error(r.trace.slice(-40).join("\n"));
  console.error(
    `\nsimulation failed with seed ${r.seed}\nreplay: ${r.replay}\n` +
      `   or: STRATA_SEED=${r.seed} deno test -A ${FILE} --filter ${
        JSON.stringify(testName)
      }`,
  );
  assert.fail(r.failure);
}

const MAIN =
  "ReplicatedNode clusters running raft-kv and the GFS master store under faults keep linearizable histories, one leader per term, and converge";

Deno.test(MAIN, async () => {
  // The two applications' state machines: raft-kv, and the GFS master's
  // ReplicatedMasterStore (its serving gate and takeover). 200 seeds by
  // default, odd ones raft-kv and even ones the master store (so the
  // default suite's time stays what 200 raft-kv seeds took); 10,000 seeds
  // under STRATA_LONG=1, each run with both (20,000 runs); one seed given
  // with STRATA_SEED runs both.
  const seeds = testSeeds(200, 10_000);
  const machinesOf = (seed: number): Array<"kv" | "gfs-store"> =>
    LONG || seeds.length === 1
      ? ["kv", "gfs-store"]
      : [seed % 2 === 1 ? "kv" : "gfs-store"];
  let storeLeaseReads = 0;
  let runs = 0;
  const total = {
    ops: 0,
    leaseReadsServed: 0,
    crashes: 0,
    pauses: 0,
    differentialFrames: 0,
    lostWrites: 0,
    tornRecordsDropped: 0,
    fsyncFailures: 0,
    enospcFailures: 0,
    bitFlips: 0,
    tornHardStates: 0,
    refusedRecoveries: 0,
    snapshotDamages: 0,
    snapshotFallbacks: 0,
    lostNodes: 0,
    unknownOutcomes: 0,
    streams: 0,
  };
  const t0 = performance.now();
  for (const seed of seeds) {
    for (const machine of machinesOf(seed)) {
      const r = await runReplicatedKvSimulation({ seed, machine });
      if (!r.ok) report(r, MAIN);
      runs++;
      if (machine === "gfs-store") storeLeaseReads += r.stats.leaseReadsServed;
      total.ops += r.stats.ops;
      total.leaseReadsServed += r.stats.leaseReadsServed;
      total.crashes += r.stats.crashes;
      total.pauses += r.stats.pauses;
      total.differentialFrames += r.stats.differentialFrames;
      total.lostWrites += r.stats.lostWrites;
      total.tornRecordsDropped += r.stats.tornRecordsDropped;
      total.fsyncFailures += r.stats.fsyncFailures;
      total.enospcFailures += r.stats.enospcFailures;
      total.bitFlips += r.stats.bitFlips;
      total.tornHardStates += r.stats.tornHardStates;
      total.refusedRecoveries += r.stats.refusedRecoveries;
      total.snapshotDamages += r.stats.snapshotDamages;
      total.snapshotFallbacks += r.stats.snapshotFallbacks;
      total.lostNodes += r.stats.lostNodes;
      total.unknownOutcomes += r.history.filter((o) => !o.output).length;
      if (r.stats.network === "stream") total.streams++;
    }
  }
  // The runs did real work under real faults.
  assert.ok(total.ops > seeds.length * 100, `only ${total.ops} operations`);
  if (seeds.length > 1) {
    assert.ok(total.crashes > 0, "no node ever crashed");
    assert.ok(total.pauses > 0, "no node was ever paused");
    assert.ok(total.lostWrites > 0, "no crash ever lost an unsynced write");
    if (seeds.length >= 20) {
      assert.ok(total.tornRecordsDropped > 0, "no torn record was recovered");
      assert.ok(total.fsyncFailures > 0, "no fsync ever failed");
      assert.ok(total.enospcFailures > 0, "no disk was ever full");
    }
    if (seeds.length >= 100) {
      assert.ok(total.bitFlips > 0, "no bit ever flipped");
      assert.ok(total.tornHardStates > 0, "no hardstate file was damaged");
      assert.ok(
        total.refusedRecoveries >= total.bitFlips,
        "a damaged disk was not refused",
      );
      // Damaged newest snapshots: some nodes fell back to the older one,
      // some refused (the log no longer reached back) and stayed down,
      // and the others' checks passed all the same.
      assert.ok(total.snapshotDamages > 0, "no snapshot was damaged");
      assert.ok(total.snapshotFallbacks > 0, "no node fell back a snapshot");
      assert.ok(total.lostNodes > 0, "no node refused a damaged snapshot");
    }
    assert.ok(total.unknownOutcomes > 0, "no operation ever timed out");
    assert.ok(total.leaseReadsServed > 0, "no read was served from a lease");
    assert.ok(
      storeLeaseReads > 0,
      "the master store never served from its lease",
    );
    assert.ok(
      total.streams === 0 || total.differentialFrames > 0,
      "stream links never sent a differential frame",
    );
  }
  if (LONG || seeds.length > 1) {
    console.log({
      seeds: seeds.length,
      runs,
      ...total,
      seconds: Math.round((performance.now() - t0) / 100) / 10,
    });
  }
});

Deno.test("a ReplicatedNode simulation replays identically from its seed", async () => {
  const a = await runReplicatedKvSimulation({ seed: 5, workloadMs: 8000 });
  const b = await runReplicatedKvSimulation({ seed: 5, workloadMs: 8000 });
  assert.ok(a.history.length > 50);
  assert.deepEqual(a.history, b.history);
  assert.deepEqual(a.trace, b.trace);
  assert.deepEqual(a.stats, b.stats);
  const c = await runReplicatedKvSimulation({ seed: 6, workloadMs: 8000 });
  assert.notDeepEqual(a.history, c.history);
});

const GFS =
  "GFS master replicas under faults: linearizable namespace and chunk operations, one leader per term, converged state";

Deno.test(GFS, async () => {
  // The real MasterMachine under ReplicatedNode directly, then the same
  // through the master's ReplicatedMasterStore (which the main test above
  // also runs, on 100 seeds): 10 seeds each by default, 2,000 each under
  // STRATA_LONG=1. Checks that every kind of operation succeeds somewhere.
  const seeds = testSeeds(10, 2000);
  let creates = 0, allocates = 0, deletes = 0, found = 0, crashes = 0;
  for (const seed of seeds) {
    for (const machine of ["gfs", "gfs-store"] as const) {
      const r = await runReplicatedKvSimulation({ seed, machine });
      if (!r.ok) report(r, GFS);
      assert.match(r.replay, new RegExp(`--machine ${machine}$`));
      crashes += r.stats.crashes;
      count(r);
    }
  }
  // Every kind of operation succeeded somewhere, under crashes.
  assert.ok(
    creates > 0 && allocates > 0 && deletes > 0 && found > 0,
    JSON.stringify({ creates, allocates, deletes, found }),
  );
  if (seeds.length > 1) assert.ok(crashes > 0, "no master ever crashed");

  function count(r: ReplicatedSimResult) {
    for (const o of r.history) {
      const i = o.input, out = o.output;
      if (out === undefined || ("ok" in out && !out.ok)) continue;
      if (i.op === "cas" && i.expected === null) creates++;
      else if (i.op === "cas") allocates++;
      else if (i.op === "delete") deletes++;
      else if (i.op === "get" && "value" in out && out.value !== null) found++;
    }
  }
});

const MEMBERSHIP =
  "ReplicatedNode clusters changing their membership (learners, promotions, joint replacements, removals) under faults stay linearizable and converge; so do clusters handing leadership over";

Deno.test(MEMBERSHIP, async () => {
  // 10 seeds that change membership (2,000 under STRATA_LONG=1), and 48 and
  // 252, which never converged while snapshots carried the membership from
  // before their Ready's changes.
  const seeds = [...testSeeds(10, 2000), 48, 252];
  let changes = 0, joint = 0;
  for (const seed of seeds) {
    const r = await runReplicatedKvSimulation({ seed, membership: 1 });
    if (!r.ok) report(r, MEMBERSHIP);
    assert.match(r.replay, /--membership$/);
    changes += r.stats.memberChanges;
    joint += r.stats.jointChanges;
  }
  if (seeds.length > 2) {
    assert.ok(changes > 0, "the membership never changed");
    assert.ok(joint > 0, "no joint change was applied");
  }
  // 10 seeds handing leadership over (2,000 under STRATA_LONG=1), with
  // membership changes on the even ones.
  let transfers = 0;
  const handOverSeeds = testSeeds(10, 2000);
  for (const seed of handOverSeeds) {
    const membership = seed % 2 === 0 ? 1 : 0;
    const r = await runReplicatedKvSimulation({
      seed,
      membership,
      transfers: 1,
    });
    if (!r.ok) report(r, MEMBERSHIP);
    assert.match(r.replay, /--transfers$/);
    transfers += r.stats.transfers;
  }
  if (handOverSeeds.length > 2) {
    assert.ok(transfers > 0, "leadership was never handed over");
  }
});
