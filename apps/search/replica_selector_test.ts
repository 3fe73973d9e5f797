import assert from "node:assert/strict";
import { ReplicaSelector } from "./replica_selector.ts";

Deno.test("the replica with the lower recent latency is preferred", () => {
  const s = new ReplicaSelector([2]);
  s.started(0, 0);
  s.succeeded(0, 0, 40);
  s.started(0, 1);
  s.succeeded(0, 1, 5);
  for (let i = 0; i < 5; i++) assert.equal(s.order(0, 0)[0], 1);
});

Deno.test("a busy replica loses to an idle one with a similar latency", () => {
  const s = new ReplicaSelector([2]);
  for (const r of [0, 1]) {
    s.started(0, r);
    s.succeeded(0, r, 10);
  }
  s.started(0, 1);
  s.started(0, 1);
  assert.equal(s.order(0, 0)[0], 0);
});

Deno.test("a failed replica is tried last until its penalty expires", () => {
  const s = new ReplicaSelector([3], { penaltyMs: 1000 });
  for (const r of [0, 1, 2]) {
    s.started(0, r);
    s.succeeded(0, r, r === 0 ? 1 : 50);
  }
  s.started(0, 0);
  s.failed(0, 0, 10_000);
  assert.equal(s.order(0, 10_500).at(-1), 0);
  assert.equal(s.order(0, 11_001)[0], 0);
});

Deno.test("unmeasured replicas share the load round-robin", () => {
  const s = new ReplicaSelector([2]);
  const firsts = new Set([0, 1, 2, 3].map(() => s.order(0, 0)[0]));
  assert.deepEqual([...firsts].sort(), [0, 1]);
});
