import assert from "node:assert/strict";
import fc from "fast-check";
import { InlineSyncRule } from "./inline_sync_rule.ts";

Deno.test("a sync descheduled under load (one slow among fast ones) keeps syncs inline; 8 slow in a row send them to the pool; one fast brings them back", () => {
  const rule = new InlineSyncRule(10);
  for (let i = 0; i < 20; i++) rule.record(0.1);
  // The thread waited 200 ms for a CPU after one sync: the device is fine.
  // (A moving average of weight 1/16, the rule before, went to 12.6 ms
  // here and sent the following syncs to the thread pool.)
  rule.record(200);
  assert.equal(rule.inline, true);
  rule.record(0.1);
  for (let i = 0; i < 7; i++) rule.record(11);
  assert.equal(rule.inline, true, "7 slow in a row");
  rule.record(11);
  assert.equal(rule.inline, false, "8 slow in a row");
  rule.record(30);
  assert.equal(rule.inline, false);
  rule.record(0.2);
  assert.equal(rule.inline, true);
});

Deno.test("inline exactly when the last `slowRun` syncs were not all slow", () => {
  fc.assert(
    fc.property(
      fc.array(fc.double({ min: 0, max: 50, noNaN: true }), { maxLength: 60 }),
      fc.integer({ min: 1, max: 10 }),
      (times, run) => {
        const rule = new InlineSyncRule(10, run);
        times.forEach((t) => rule.record(t));
        const tail = times.slice(-run);
        const allSlow = tail.length === run && tail.every((t) => t > 10);
        assert.equal(rule.inline, !allSlow);
      },
    ),
  );
});
