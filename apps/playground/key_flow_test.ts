import assert from "node:assert/strict";
import { KeyFlow } from "./key_flow.ts";

Deno.test("a write shows where it was proposed, its index and term, and when each node applied it", () => {
  const f = new KeyFlow("color");
  f.record({ type: "proposed", writeId: 1, node: 2, value: "red", atMs: 1000 });
  // The leader and a follower apply before the proposer's answer arrives.
  f.record({
    type: "applied",
    node: 1,
    index: 7,
    op: "put",
    value: "red",
    atMs: 1004,
  });
  f.record({
    type: "applied",
    node: 2,
    index: 7,
    op: "put",
    value: "red",
    atMs: 1006,
  });
  let v = f.view();
  assert.equal(
    v.writes.length,
    1,
    "an early apply is not shown as a stranger's write",
  );
  assert.equal(v.writes[0]!.status, "pending");
  f.record({ type: "committed", writeId: 1, index: 7, term: 3, atMs: 1008 });
  f.record({
    type: "applied",
    node: 3,
    index: 7,
    op: "put",
    value: "red",
    atMs: 1011,
  });
  v = f.view();
  assert.equal(v.key, "color");
  assert.deepEqual(v.writes[0], {
    writeId: 1,
    proposedAt: 2,
    value: "red",
    op: "put",
    startedAtMs: 1000,
    status: "committed",
    index: 7,
    term: 3,
    committedAfterMs: 8,
    applied: [
      { node: 1, afterMs: 4 },
      { node: 2, afterMs: 6 },
      { node: 3, afterMs: 11 },
    ],
    error: null,
  });
});

Deno.test("a node seen twice (watch replay after a reconnect) keeps its first apply time", () => {
  const f = new KeyFlow("k");
  f.record({ type: "proposed", writeId: 1, node: 1, value: "v", atMs: 0 });
  f.record({ type: "committed", writeId: 1, index: 4, term: 1, atMs: 5 });
  f.record({
    type: "applied",
    node: 3,
    index: 4,
    op: "put",
    value: "v",
    atMs: 9,
  });
  f.record({
    type: "applied",
    node: 3,
    index: 4,
    op: "put",
    value: "v",
    atMs: 900,
  });
  assert.deepEqual(f.view().writes[0]!.applied, [{ node: 3, afterMs: 9 }]);
});

Deno.test("writes made by other clients appear with no proposer, timed from the first apply", () => {
  const f = new KeyFlow("k");
  f.record({
    type: "applied",
    node: 2,
    index: 10,
    op: "put",
    value: "x",
    atMs: 50,
  });
  f.record({
    type: "applied",
    node: 1,
    index: 10,
    op: "put",
    value: "x",
    atMs: 53,
  });
  f.record({ type: "applied", node: 1, index: 12, op: "delete", atMs: 80 });
  const v = f.view();
  assert.deepEqual(v.writes.map((w) => [w.index, w.op, w.proposedAt]), [
    [12, "delete", null],
    [10, "put", null],
  ]);
  assert.deepEqual(v.writes[1]!.applied, [
    { node: 2, afterMs: 0 },
    { node: 1, afterMs: 3 },
  ]);
});

Deno.test("a failed write says why, and writes are listed newest first with pending ones on top", () => {
  const f = new KeyFlow("k");
  f.record({ type: "proposed", writeId: 1, node: 1, value: "a", atMs: 0 });
  f.record({ type: "committed", writeId: 1, index: 3, term: 1, atMs: 2 });
  f.record({ type: "proposed", writeId: 2, node: 1, value: "b", atMs: 10 });
  f.record({ type: "failed", writeId: 2, message: "no leader", atMs: 20 });
  f.record({ type: "proposed", writeId: 3, node: 2, value: "c", atMs: 30 });
  const v = f.view();
  assert.deepEqual(v.writes.map((w) => [w.writeId, w.status]), [
    [3, "pending"],
    [2, "failed"],
    [1, "committed"],
  ]);
  assert.equal(v.writes[1]!.error, "no leader");
  // A late "failed" (e.g. a timeout) never overrides a commit.
  f.record({ type: "failed", writeId: 1, message: "timeout", atMs: 99 });
  assert.equal(f.view().writes[2]!.status, "committed");
});

Deno.test("only the newest writes are kept", () => {
  const f = new KeyFlow("k", 5);
  for (let i = 1; i <= 50; i++) {
    f.record({
      type: "proposed",
      writeId: i,
      node: 1,
      value: `v${i}`,
      atMs: i,
    });
    f.record({
      type: "committed",
      writeId: i,
      index: 100 + i,
      term: 1,
      atMs: i,
    });
    f.record({
      type: "applied",
      node: 1,
      index: 100 + i,
      op: "put",
      value: `v${i}`,
      atMs: i,
    });
  }
  const v = f.view();
  assert.equal(v.writes.length, 5);
  assert.deepEqual(v.writes.map((w) => w.index), [150, 149, 148, 147, 146]);
  assert.ok(v.writes.every((w) => w.applied.length === 1));
});
