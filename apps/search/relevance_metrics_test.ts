import assert from "node:assert/strict";
import { averagePrecision, ndcgAt, scoreRun } from "./relevance_metrics.ts";

Deno.test("average precision follows the textbook example", () => {
  const judged = new Map([["a", 1], ["c", 1], ["x", 1]]);
  // relevant at ranks 1 and 3, one never retrieved: (1/1 + 2/3) / 3
  assert.equal(averagePrecision(["a", "b", "c", "d"], judged), (1 + 2 / 3) / 3);
  assert.equal(averagePrecision([], judged), 0);
});

Deno.test("nDCG is 1 for the ideal order and lower otherwise", () => {
  const judged = new Map([["a", 4], ["b", 2], ["c", 1]]);
  assert.equal(ndcgAt(["a", "b", "c"], judged, 10), 1);
  const worse = ndcgAt(["c", "b", "a"], judged, 10);
  assert.ok(worse < 1 && worse > 0);
  assert.equal(ndcgAt(["z"], judged, 10), 0);
});

Deno.test("a run's scores average over the judged queries", () => {
  const qrels = new Map([["1", new Map([["a", 1]])], [
    "2",
    new Map([["b", 1]]),
  ]]);
  const s = scoreRun(new Map([["1", ["a"]]]), qrels);
  assert.equal(s.map, 0.5);
  assert.equal(s.ndcg10, 0.5);
  assert.equal(s.queries, 2);
});
