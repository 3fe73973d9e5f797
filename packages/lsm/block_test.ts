import assert from "node:assert/strict";
import fc from "fast-check";
import { decodeBlock, encodeBlock, keyAt, valueAt } from "./block.ts";
import type { Entry } from "./memtable.ts";

const entries = fc.uniqueArray(
  fc.record({
    key: fc.uint8Array({ minLength: 1, maxLength: 24 }),
    value: fc.option(fc.uint8Array({ maxLength: 40 }), { nil: null }),
  }),
  { minLength: 1, maxLength: 300, selector: (e) => e.key.join(",") },
).map((es) =>
  es.map((e): Entry => ({ key: e.key, value: e.value })).sort((a, b) => {
    const n = Math.min(a.key.length, b.key.length);
    for (let i = 0; i < n; i++) {
      if (a.key[i] !== b.key[i]) return a.key[i]! - b.key[i]!;
    }
    return a.key.length - b.key.length;
  })
);

function read(b: ReturnType<typeof decodeBlock>): Entry[] {
  return Array.from(
    { length: b.count },
    (_, i) => ({ key: keyAt(b, i), value: valueAt(b, i) }),
  );
}

Deno.test("decoded blocks keep their own offsets while later blocks are decoded (shared scratch and slabs)", () => {
  fc.assert(
    fc.property(fc.array(entries, { minLength: 2, maxLength: 8 }), (blocks) => {
      // Decoded one after another, as reads fill the block cache; each
      // earlier block still reads back exactly what was encoded.
      const decoded = blocks.map((es) => decodeBlock(encodeBlock(es), "t"));
      decoded.forEach((d, i) => {
        assert.equal(d.count, blocks[i]!.length);
        assert.deepEqual(read(d), blocks[i]);
      });
    }),
    { numRuns: 60 },
  );
});
