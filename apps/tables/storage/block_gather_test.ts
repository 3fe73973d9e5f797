import assert from "node:assert/strict";
import fc from "fast-check";
import { BlockGather } from "./block_gather.ts";

Deno.test("block gather: a log with few writers never waits; a busy one waits for as many writes as its last block carried, at most that block's time and the cap; not after an idle spell longer than that block", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 500 }),
      fc.integer({ min: 0, max: 100 }),
      fc.integer({ min: 0, max: 600 }),
      fc.option(fc.integer({ min: 0, max: 200 })),
      (writes, ms, queued, idle) => {
        const g = new BlockGather({ busyWrites: 16, maxWaitMs: 10 });
        assert.equal(g.plan(queued), undefined, "no block done yet");
        g.blockDone(writes, ms);
        if (idle !== null) {
          g.idle(1000);
          g.woke(1000 + idle);
        }
        const plan = g.plan(queued);
        const stale = idle !== null && idle > ms;
        if (writes < 16 || queued >= writes || ms === 0 || stale) {
          assert.equal(plan, undefined);
        } else {
          assert.deepEqual(plan, { writes, waitMs: Math.min(10, ms) });
        }
      },
    ),
  );
});
