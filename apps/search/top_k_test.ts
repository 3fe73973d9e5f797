import assert from "node:assert/strict";
import fc from "fast-check";
import { TopK } from "./top_k.ts";
import { compareHits } from "./hit_order.ts";

Deno.test("top-k keeps exactly the k best hits of a stream, ties by id", () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(
        fc.record({
          id: fc.string({ maxLength: 4 }),
          score: fc.integer({ min: 0, max: 5 }),
        }),
        { selector: (h) => h.id, maxLength: 60 },
      ),
      fc.integer({ min: 0, max: 20 }),
      (hits, k) => {
        const top = new TopK<{ id: string; score: number }>(k);
        for (const h of hits) top.offer(h);
        assert.deepEqual(top.sorted(), [...hits].sort(compareHits).slice(0, k));
      },
    ),
    { numRuns: 300 },
  );
});
