import assert from "node:assert/strict";
import { runKvSimulation } from "./kv_simulation.ts";
import { LONG, runSeeded, testSeeds } from "./seeded_test_runner.ts";

const FILE = "packages/sim/kv_simulation_test.ts";

Deno.test("randomized replicated KV histories are linearizable and lose no acknowledged write", () => {
  // 100 seeds by default (200 before the MIT lab moved onto the slower
  // ReplicatedNode, which runs its own 200 seeds in
  // replicated_kv_sim_test.ts), 10,000 under STRATA_LONG=1.
  const seeds = testSeeds(100, 10_000);
  let completed = 0;
  let unknown = 0;
  let crashes = 0;
  const name =
    "randomized replicated KV histories are linearizable and lose no acknowledged write";
  runSeeded(FILE, name, seeds, (seed) => {
    const r = runKvSimulation({ seed });
    assert.notEqual(r.check.result, "illegal");
    completed += r.completed;
    unknown += r.unknown;
    crashes += r.crashes;
  });
  // The runs did real work under real faults.
  assert.ok(
    completed > seeds.length * 20,
    `only ${completed} operations completed`,
  );
  if (seeds.length > 1) {
    assert.ok(unknown > 0, "no operation ever timed out: faults too mild");
    assert.ok(crashes > 0, "no node ever crashed");
  }
  if (LONG) console.log({ seeds: seeds.length, completed, unknown, crashes });
});

Deno.test("a KV simulation replays identically from its seed", () => {
  const a = runKvSimulation({ seed: 7 });
  const b = runKvSimulation({ seed: 7 });
  assert.deepEqual(a, b);
  const c = runKvSimulation({ seed: 8 });
  assert.notDeepEqual(a.events, c.events);
});
