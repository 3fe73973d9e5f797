import assert from "node:assert/strict";
import fc from "fast-check";
import { frameRecord, scanRecords } from "./record_format.ts";

Deno.test("records framed among padding, garbage and torn copies scan back intact and in order", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.tuple(
          fc.uint8Array({ minLength: 0, maxLength: 300 }),
          fc.constantFrom("none", "zeros", "garbage", "torn"),
        ),
        { maxLength: 20 },
      ),
      (items) => {
        const parts: Uint8Array[] = [];
        for (const [rec, junk] of items) {
          const framed = frameRecord(rec);
          if (junk === "zeros") parts.push(new Uint8Array(17));
          if (junk === "garbage") {
            parts.push(Uint8Array.from([0x52, 0x53, 0x46, 0x47, 9, 9, 9]));
          }
          if (junk === "torn") {
            parts.push(framed.subarray(0, Math.max(0, framed.length - 1)));
          }
          parts.push(framed);
        }
        const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
        let o = 0;
        for (const p of parts) {
          all.set(p, o);
          o += p.length;
        }
        const found = [...scanRecords(all)].map((r) => Array.from(r));
        const expected = items.map(([r]) => Array.from(r));
        // Every record is found, in order; a torn copy is never returned as a record.
        let k = 0;
        for (const f of found) {
          if (
            k < expected.length &&
            JSON.stringify(f) === JSON.stringify(expected[k])
          ) k++;
        }
        assert.equal(k, expected.length);
        assert.ok(
          found.length <=
            expected.length + items.filter(([, j]) => j === "torn").length,
        );
      },
    ),
    { numRuns: 200 },
  );
});
