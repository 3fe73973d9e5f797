import assert from "node:assert/strict";
import fc from "fast-check";
import { NO_MORE_DOCS, PostingCursor, PostingsWriter } from "./postings.ts";

const postingsArb = fc.uniqueArray(fc.integer({ min: 0, max: 5000 }), {
  minLength: 1,
  maxLength: 600,
}).chain((docs) => {
  docs.sort((a, b) => a - b);
  return fc.tuple(
    fc.constant(docs),
    fc.array(
      fc.uniqueArray(fc.integer({ min: 0, max: 100_000 }), {
        minLength: 1,
        maxLength: 5,
      }),
      { minLength: docs.length, maxLength: docs.length },
    ),
  );
});

Deno.test("postings decode to exactly what was encoded, across blocks", () => {
  fc.assert(
    fc.property(postingsArb, ([docs, pos]) => {
      const positions = pos.map((p) => [...p].sort((a, b) => a - b));
      const lens = new Uint32Array(5001).fill(7);
      const w = new PostingsWriter();
      w.add([5], [1], [0], lens); // another term first, so offsets are not 0
      const t = w.add(
        docs,
        positions.map((p) => p.length),
        positions.flat(),
        lens,
      );
      const c = new PostingCursor(w.finish(), t);
      for (let i = 0; i < docs.length; i++) {
        assert.equal(c.next(), docs[i]);
        assert.equal(c.tf, positions[i]!.length);
        if (i % 3 === 0) assert.deepEqual(c.positions(), positions[i]);
      }
      assert.equal(c.next(), NO_MORE_DOCS);
    }),
    { numRuns: 150 },
  );
});

Deno.test("advance with skip data lands where a linear scan lands", () => {
  fc.assert(
    fc.property(
      postingsArb,
      fc.array(fc.integer({ min: 0, max: 400 }), { maxLength: 30 }),
      ([docs], steps) => {
        const lens = new Uint32Array(5001);
        const w = new PostingsWriter();
        const t = w.add(docs, docs.map(() => 1), docs.map(() => 0), lens);
        const c = new PostingCursor(w.finish(), t);
        let target = 0;
        for (const s of steps) {
          target += s;
          const want = docs.find((d) => d >= Math.max(target, c.doc)) ??
            NO_MORE_DOCS;
          assert.equal(c.advance(target), want);
          if (want === NO_MORE_DOCS) break;
        }
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("delta + varint postings take about a byte or two per posting", () => {
  const docs = Array.from({ length: 10_000 }, (_, i) => i * 3);
  const w = new PostingsWriter();
  const t = w.add(
    docs,
    docs.map(() => 1),
    docs.map(() => 4),
    new Uint32Array(30_000),
  );
  const data = w.finish();
  assert.equal(t.blockCount, Math.ceil(10_000 / 128));
  // doc delta (1 byte) + tf (1 byte) + one position (1 byte)
  assert.equal(data.bytes.length, 30_000);
});
