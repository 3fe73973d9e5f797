import assert from "node:assert/strict";
import fc from "fast-check";
import { concatSortMerge, kwayMerge } from "./kway_merge.ts";
import { compareHits, type Ranked } from "./hit_order.ts";

const hitArb = fc.record({
  id: fc.string({ maxLength: 3 }),
  score: fc.integer({ min: 0, max: 8 }).map((n) => n / 2),
});

Deno.test("k-way merge equals concatenate-and-sort for random sorted lists", () => {
  fc.assert(
    fc.property(
      fc.array(fc.array(hitArb, { maxLength: 30 }), { maxLength: 12 }),
      fc.integer({ min: 0, max: 200 }),
      (raw, limit) => {
        const lists = raw.map((l) => [...l].sort(compareHits));
        // Tag each hit with its list and position: equal hits must come out
        // by list index then position, which is what a stable sort of the
        // concatenation gives.
        const tagged = lists.map((l, s) => l.map((h, p) => ({ ...h, s, p })));
        const got = kwayMerge(tagged, compareHits, limit);
        const want = concatSortMerge(tagged, compareHits, limit);
        assert.deepEqual(got, want);
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("k-way merge of no lists or empty lists is empty", () => {
  assert.deepEqual(kwayMerge<Ranked>([], compareHits), []);
  assert.deepEqual(kwayMerge<Ranked>([[], []], compareHits, 5), []);
});
