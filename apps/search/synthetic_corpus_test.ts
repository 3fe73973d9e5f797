import assert from "node:assert/strict";
import { syntheticCorpus, syntheticQueries } from "./synthetic_corpus.ts";

Deno.test("the synthetic corpus is seeded, Zipfian and generated on the fly", () => {
  const a = [...syntheticCorpus({ docs: 2000, seed: 3 })];
  const b = [...syntheticCorpus({ docs: 2000, seed: 3 })];
  assert.deepEqual(a, b);
  assert.notDeepEqual(
    [...syntheticCorpus({ docs: 5, seed: 4 })],
    a.slice(0, 5),
  );
  const counts = new Map<string, number>();
  for (const d of a) {
    for (const w of d.body.split(" ")) {
      counts.set(w, (counts.get(w) ?? 0) + 1);
    }
  }
  const sorted = [...counts.values()].sort((x, y) => y - x);
  // Zipf with s = 1: the top word is about twice the second and ten times the tenth.
  assert.ok(sorted[0]! / sorted[1]! > 1.5 && sorted[0]! / sorted[1]! < 2.6);
  assert.ok(sorted[0]! / sorted[9]! > 6 && sorted[0]! / sorted[9]! < 15);
  assert.equal(syntheticQueries(10, { seed: 3 }).length, 10);
});
