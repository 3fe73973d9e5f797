import assert from "node:assert/strict";
import fc from "fast-check";
import { Analyzer } from "./analyzer.ts";
import type { StoredDocument } from "./document.ts";
import { NO_MORE_DOCS } from "./postings.ts";
import {
  buildSegment,
  decodeSegment,
  encodeSegment,
  type Segment,
} from "./segment.ts";
import { mergeSegments } from "./segment_merge.ts";
import { isSearchError } from "./search_error.ts";

const analyzer = new Analyzer();
const words = [
  "alpha",
  "beta",
  "gamma",
  "delta",
  "epsilon",
  "zeta",
  "eta",
  "theta",
];
const docsArb = fc.array(
  fc.record({
    name: fc.array(fc.constantFrom(...words), { maxLength: 3 }).map((w) =>
      w.join(" ")
    ),
    body: fc.array(fc.constantFrom(...words), { maxLength: 20 }).map((w) =>
      w.join(" ")
    ),
    user_id: fc.nat(5),
  }),
  { maxLength: 300 },
);

/** Every field's terms with their decoded (doc id, tf, positions) postings, by document id. */
function dump(seg: Segment) {
  return seg.fields.map((f, fi) =>
    f.terms.map((t) => {
      const c = seg.cursor(fi, t)!;
      const out: Array<[string, number, number[]]> = [];
      for (let d = c.next(); d !== NO_MORE_DOCS; d = c.next()) {
        out.push([seg.ids[d]!, c.tf, c.positions()]);
      }
      return [t, out];
    })
  );
}

Deno.test("a segment file decodes to the same index", () => {
  fc.assert(
    fc.property(docsArb, (raw) => {
      const docs = raw.map((d, i): StoredDocument => ({
        ...d,
        id: `d${i}`,
        created: i,
      }));
      const seg = buildSegment(docs, analyzer);
      const back = decodeSegment(encodeSegment(seg));
      assert.deepEqual(dump(back), dump(seg));
      assert.deepEqual(back.ids, seg.ids);
      assert.deepEqual(back.lens, seg.lens);
    }),
    { numRuns: 40 },
  );
});

Deno.test("merging segments equals indexing their live documents afresh", () => {
  fc.assert(
    fc.property(
      docsArb,
      docsArb,
      fc.array(fc.nat(600), { maxLength: 40 }),
      (a, b, dels) => {
        const da = a.map((d, i): StoredDocument => ({
          ...d,
          id: `a${i}`,
          created: i,
        }));
        const db = b.map((d, i): StoredDocument => ({
          ...d,
          id: `b${i}`,
          created: i,
        }));
        const sa = buildSegment(da, analyzer);
        const sb = buildSegment(db, analyzer);
        const del = [new Uint8Array(da.length), new Uint8Array(db.length)];
        for (const x of dels) {
          if (x < da.length) del[0]![x] = 1;
          else if (x - da.length < db.length) del[1]![x - da.length] = 1;
        }
        const merged = mergeSegments([{ segment: sa, deleted: del[0]! }, {
          segment: sb,
          deleted: del[1]!,
        }]);
        const live = [
          ...da.filter((_, i) => del[0]![i] === 0),
          ...db.filter((_, i) => del[1]![i] === 0),
        ];
        const fresh = buildSegment(live, analyzer);
        assert.deepEqual(dump(merged), dump(fresh));
        assert.deepEqual(merged.ids, fresh.ids);
        assert.deepEqual(merged.lens, fresh.lens);
      },
    ),
    { numRuns: 40 },
  );
});

Deno.test("a truncated or foreign file is refused as corrupt_segment", () => {
  const bytes = encodeSegment(
    buildSegment(
      [{ id: "x", user_id: 1, name: "a", body: "b", created: 0 }],
      analyzer,
    ),
  );
  assert.throws(
    () => decodeSegment(bytes.subarray(0, bytes.length - 3)),
    (e) => isSearchError(e, "corrupt_segment"),
  );
  assert.throws(
    () => decodeSegment(new TextEncoder().encode("hello world, not a segment")),
    (e) => isSearchError(e, "corrupt_segment"),
  );
});
