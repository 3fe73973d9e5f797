import assert from "node:assert/strict";
import fc from "fast-check";
import { NeedleIndex } from "./needle_index.ts";
import type { NeedleLocation } from "./needle_index_checkpoint.ts";

/** The location fields of an entry (entries are also chain nodes). */
function fields(l: NeedleLocation | undefined) {
  if (l === undefined) return undefined;
  const { key, altKey, offset, size, flags } = l;
  return { key, altKey, offset, size, flags };
}

Deno.test("the needle index behaves like a map keyed by (key, altKey)", () => {
  const op = fc.record({
    del: fc.boolean(),
    key: fc.integer({ min: 0, max: 5 }),
    altKey: fc.integer({ min: 0, max: 3 }),
    offset: fc.nat(),
  });
  fc.assert(
    fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
      const index = new NeedleIndex();
      const model = new Map<string, NeedleLocation>();
      for (const o of ops) {
        const k = `${o.key}/${o.altKey}`;
        if (o.del) {
          assert.equal(index.delete(o.key, o.altKey), model.delete(k));
        } else {
          const loc = {
            key: o.key,
            altKey: o.altKey,
            offset: o.offset,
            size: 1,
            flags: 0,
          };
          index.set(loc);
          model.set(k, loc);
        }
        assert.equal(index.size, model.size);
      }
      for (const [k, loc] of model) {
        const [key, alt] = k.split("/").map(Number);
        assert.deepEqual(fields(index.get(key!, alt!)), loc);
      }
      assert.equal([...index.values()].length, model.size);
    }),
  );
});

Deno.test("a conditional delete leaves a newer entry alone", () => {
  const index = new NeedleIndex();
  const old = { key: 1, altKey: 0, offset: 16, size: 1, flags: 0 };
  const now = { ...old, offset: 64 };
  index.set(old);
  index.set(now);
  assert.equal(index.delete(1, 0, old.offset), false);
  assert.deepEqual(fields(index.get(1, 0)), now);
  assert.equal(index.delete(1, 0, now.offset), true);
  assert.equal(index.size, 0);
});
