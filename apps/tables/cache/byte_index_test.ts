import assert from "node:assert/strict";
import fc from "fast-check";
import { ByteIndex, hashBytes, hashLatin1 } from "./byte_index.ts";
import { fromLatin1 } from "./memory_tablet.ts";

Deno.test("ByteIndex finds by bytes in place what a Map finds by string, through adds, replaces and removes (fast-check)", () => {
  const key = fc.string({ unit: "binary-ascii", minLength: 0, maxLength: 6 });
  const op = fc.tuple(fc.constantFrom("add", "replace", "remove"), key);
  fc.assert(
    fc.property(fc.array(op, { maxLength: 400 }), (ops) => {
      const index = new ByteIndex<{ k: string; n: number }>();
      const model = new Map<string, { k: string; n: number }>();
      ops.forEach(([what, k], n) => {
        const had = model.get(k);
        if (what === "remove") {
          if (had) index.remove(had);
          model.delete(k);
        } else if (had) {
          const next = { k, n };
          index.replace(had, next);
          model.set(k, next);
        } else {
          const r = { k, n };
          index.add(r);
          model.set(k, r);
        }
        assert.equal(index.size, model.size);
      });
      // Looked up inside a larger buffer, at an offset.
      for (const k of new Set(ops.map(([, k]) => k))) {
        const b = fromLatin1(`\u00ff${k}\u00fe`);
        assert.equal(index.getAt(b, 1, k.length), model.get(k), k);
      }
    }),
    { numRuns: 200 },
  );
  const b = fromLatin1("key:\u0080\u00ff");
  assert.equal(hashBytes(b, 0, b.length), hashLatin1("key:\u0080\u00ff"));
});
