import assert from "node:assert/strict";
import fc from "fast-check";
import { BlockGather } from "./block_gather.ts";

Deno.test("block gather: a log with few writers never waits; a busy one waits for as many writes as its last block carried, at most that block's time and the cap", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 500 }),
      fc.double({ min: 0, max: 100, noNaN: true }),
      fc.integer({ min: 0, max: 600 }),
      (writes, ms, queued) => {
        const g = new BlockGather({ busyWrites: 16, maxWaitMs: 10 });
        assert.equal(g.plan(queued), undefined, "no block done yet");
        g.blockDone(writes, ms);
        const plan = g.plan(queued);
        if (writes < 16 || queued >= writes || ms === 0) {
          assert.equal(plan, undefined);
        } else {
          assert.deepEqual(plan, {
            writes,
            waitMs: Math.min(10, ms),
          });
        }
      },
    ),
  );
});
