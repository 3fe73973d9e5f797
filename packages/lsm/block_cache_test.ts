import assert from "node:assert/strict";
import fc from "fast-check";
import type { DecodedBlock } from "./block.ts";
import { BlockCache } from "./block_cache.ts";

const block = (bytes: number): DecodedBlock => ({
  data: new Uint8Array(1),
  offs: new Int32Array(4),
  count: 1,
  bytes,
});
/** What the cache charges a block (encoded size, 64 per block, 16 per entry). */
const cost = (b: DecodedBlock) => b.bytes + 64 + b.count * 16;

type Op =
  | { op: "get" | "peek"; t: number; b: number }
  | { op: "set"; t: number; b: number; bytes: number }
  | { op: "evict"; t: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    op: fc.constantFrom("get" as const, "peek" as const),
    t: fc.nat(1),
    b: fc.nat(4),
  }),
  fc.record({
    op: fc.constant("set" as const),
    t: fc.nat(1),
    b: fc.nat(4),
    bytes: fc.integer({ min: 0, max: 600 }),
  }),
  fc.record({ op: fc.constant("evict" as const), t: fc.nat(1) }),
);

Deno.test("the block cache evicts least recently used first within its budget, as a list model does (fast-check)", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 2000 }),
      fc.array(opArb, { maxLength: 200 }),
      (budget, ops) => {
        const cache = new BlockCache(budget);
        // Least recently used first.
        let model: { t: number; b: number; block: DecodedBlock }[] = [];
        const at = (t: number, b: number) =>
          model.findIndex((m) => m.t === t && m.b === b);
        for (const o of ops) {
          if (o.op === "get" || o.op === "peek") {
            const i = at(o.t, o.b);
            const got = o.op === "get"
              ? cache.get(o.t, o.b)
              : cache.peek(o.t, o.b);
            assert.equal(got, i < 0 ? undefined : model[i]!.block);
            if (i >= 0 && o.op === "get") model.push(...model.splice(i, 1));
          } else if (o.op === "set") {
            const v = block(o.bytes);
            cache.set(o.t, o.b, v);
            if (cost(v) > budget) continue;
            const i = at(o.t, o.b);
            if (i >= 0) model.splice(i, 1);
            model.push({ t: o.t, b: o.b, block: v });
            let bytes = model.reduce((n, m) => n + cost(m.block), 0);
            while (bytes > budget) bytes -= cost(model.shift()!.block);
          } else {
            cache.evictTable(o.t);
            model = model.filter((m) => m.t !== o.t);
          }
          assert.equal(cache.size, model.length);
          assert.equal(
            cache.bytes,
            model.reduce((n, m) => n + cost(m.block), 0),
          );
          assert.ok(cache.bytes <= budget);
        }
      },
    ),
    { numRuns: 1500 },
  );
});
