import assert from "node:assert/strict";
import fc from "fast-check";
import { compareBytes } from "./bytes.ts";
import { Memtable } from "./memtable.ts";

const byteArb = fc.constantFrom(0, 1, 0x7f, 0x80, 0xfe, 0xff, 0x41);
const keyArb = fc.oneof(
  { weight: 9, arbitrary: fc.uint8Array({ maxLength: 6 }) },
  {
    weight: 9,
    arbitrary: fc.array(byteArb, { maxLength: 6 }).map((a) =>
      Uint8Array.from(a)
    ),
  },
  // Longer than keyString's 8192-byte chunks.
  {
    weight: 1,
    arbitrary: fc.tuple(fc.integer({ min: 8190, max: 16500 }), byteArb).map((
      [n, b],
    ) => new Uint8Array(n).fill(b)),
  },
);

Deno.test("the memtable orders, finds and ranges keys byte-wise, as compareBytes does (fast-check)", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(keyArb, fc.boolean()), { maxLength: 60 }),
      keyArb,
      keyArb,
      (writes, a, b) => {
        const mem = new Memtable();
        const model = new Map<string, { key: Uint8Array; del: boolean }>();
        writes.forEach(([k, del], i) => {
          mem.set(k, del ? null : Uint8Array.of(i));
          model.set(k.join(","), { key: k, del });
        });
        const sorted = [...model.values()].sort((x, y) =>
          compareBytes(x.key, y.key)
        );
        assert.deepEqual(
          [...mem.entries()].map((e) => e.key),
          sorted.map((e) => e.key),
        );
        for (const { key, del } of sorted) {
          const v = mem.get(key);
          assert.ok(del ? v === null : v instanceof Uint8Array);
        }
        assert.equal(mem.size, sorted.length);
        const [lo, hi] = compareBytes(a, b) <= 0 ? [a, b] : [b, a];
        assert.deepEqual(
          mem.range(lo, hi).map((e) => e.key),
          sorted.filter((e) =>
            compareBytes(e.key, lo) >= 0 && compareBytes(e.key, hi) < 0
          ).map((e) => e.key),
        );
        assert.deepEqual(
          [...mem.entries(lo)].map((e) => e.key),
          sorted.filter((e) => compareBytes(e.key, lo) >= 0).map((e) => e.key),
        );
      },
    ),
    { numRuns: 300 },
  );
});
