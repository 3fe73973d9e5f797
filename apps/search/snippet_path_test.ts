import assert from "node:assert/strict";
import fc from "fast-check";
import { Analyzer } from "./analyzer.ts";
import { statKey } from "./bm25.ts";
import { snippetAt } from "./highlight.ts";
import { parseQuery } from "./query_parser.ts";
import { encode as encodeCbor } from "cbor-x";
import { sealEnvelope } from "@strata/codec";
import {
  buildSegment,
  decodeSegment,
  encodeSegment,
  SEGMENT_KIND,
} from "./segment.ts";
import { mergeSegments } from "./segment_merge.ts";
import { hitSnippet, snippetTerms, termPositions } from "./shard_app.ts";
import { MARK_EVERY, tokenEnd, tokenMarks, tokenStart } from "./tokenizer.ts";

const BODY = 1;

/** Every token of `text` as [start, end) by a plain scan. */
function scanTokens(text: string): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = tokenStart(text, 0); i < text.length;) {
    const e = tokenEnd(text, i);
    out.push([i, e]);
    i = tokenStart(text, e);
  }
  return out;
}

const pieces = [
  "flow",
  "Flows",
  "the",
  "Café",
  "don't",
  "İstanbul",
  "𝒳y",
  "x".repeat(70),
  "é",
  "naïve",
  "’tis",
  "ab'",
  "1.5",
  "<b>",
  "&",
  " ",
  "\n",
  "—",
  "'",
  "\u0301",
];
const textArb = fc.array(fc.constantFrom(...pieces), { maxLength: 60 }).map(
  (p) => p.join(""),
);

Deno.test("the plain scan finds exactly the analyzer's token positions", () => {
  const a = new Analyzer();
  fc.assert(
    fc.property(textArb, (text) => {
      const tokens = scanTokens(text);
      const { terms, positions } = a.analyze(text);
      // Every indexed term sits at a scanned token that analyzes to it.
      positions.forEach((p, i) => {
        const [s, e] = tokens[p]!;
        assert.deepEqual(a.analyze(text.slice(s, e)).terms, [terms[i]]);
      });
      // And the scan has no token past the analyzer's last position.
      const lastPos = positions.at(-1) ?? -1;
      assert.ok(tokens.length >= lastPos + 1);
      // Marks are the offsets of every MARK_EVERY-th token.
      const marks = tokenMarks(text);
      assert.deepEqual(
        marks,
        tokens.filter((_, i) => i % MARK_EVERY === 0).map(([s]) => s),
      );
    }),
    { numRuns: 300 },
  );
});

Deno.test("a snippet is the same with stored marks as with a scan from the start", () => {
  fc.assert(
    fc.property(
      fc.array(fc.constantFrom("alpha", "beta", "gamma", "Δelta", "x-y"), {
        minLength: 1,
        maxLength: 300,
      }).map((w) => w.join(" ")),
      fc.uniqueArray(fc.nat(400), { maxLength: 12 }),
      fc.integer({ min: 1, max: 40 }),
      (text, hits, window) => {
        hits.sort((x, y) => x - y);
        assert.equal(
          snippetAt(text, hits, tokenMarks(text), window),
          snippetAt(text, hits, null, window),
        );
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("snippets mark the words at the hit positions, escape the rest, cut with …", () => {
  const text =
    "Heat <b>flows</b> through the slab & wall. More words follow here";
  assert.equal(
    snippetAt(text, [2, 6], null, 7),
    "Heat &lt;b&gt;<mark>flows</mark>&lt;/b&gt; through the <mark>slab</mark>…",
  );
  const words = Array.from({ length: 200 }, (_, i) => `w${i}`);
  assert.equal(
    snippetAt(words.join(" "), [150, 152, 190], tokenMarks(words.join(" ")), 8),
    "…w147 w148 w149 <mark>w150</mark> w151 <mark>w152</mark> w153 w154…",
  );
  assert.equal(snippetAt("", [], null), "");
  assert.equal(snippetAt("a b", [], null), "a b");
});

Deno.test("segment snippets come from postings: stems, phrases, prefixes, a match past 50k characters", () => {
  const a = new Analyzer();
  const filler = Array.from({ length: 12_000 }, (_, i) => `filler${i % 7}`)
    .join(" ");
  const docs = [
    {
      id: "a",
      user_id: 1,
      created: 1,
      name: "heat transfer",
      body:
        `${filler} the slab flows quickly; heated slabs flowed. Aerodynamic end`,
    },
    { id: "b", user_id: 1, created: 2, name: "Flowing title", body: "" },
  ];
  assert.ok(docs[0]!.body.length > 50_000);
  const seg = buildSegment(docs, a);
  const q = parseQuery('flow "heated slabs" aero*', a);
  const prefixClause = [...q.must, ...q.should].find((c) =>
    c.kind === "prefix"
  );
  assert.ok(prefixClause);
  const ctx = {
    stats: { docCount: 2, fieldLength: {}, df: {} },
    expansions: { [statKey("body", "aero")]: ["aerodynam"] },
  };
  const terms = snippetTerms(q, ctx);
  const s = hitSnippet({ id: "a", score: 1, segment: seg, doc: 0 }, terms);
  assert.match(
    s,
    /^…filler\d filler\d the <mark>slab<\/mark> <mark>flows<\/mark> quickly; <mark>heated<\/mark> <mark>slabs<\/mark> <mark>flowed<\/mark>\. <mark>Aerodynamic<\/mark> end$/,
  );
  // Empty body: the name's words are marked.
  assert.equal(
    hitSnippet({ id: "b", score: 1, segment: seg, doc: 1 }, terms),
    "<mark>Flowing</mark> title",
  );
  // Positions are sorted and distinct across terms.
  const p = termPositions(seg, BODY, ["slab", "flow", "slab"], 0);
  assert.deepEqual(p, [...p].sort((x, y) => x - y));
  assert.equal(new Set(p).size, p.length);
  // Marks survive a file round trip and a merge unchanged.
  for (
    const again of [
      decodeSegment(encodeSegment(seg)),
      mergeSegments([{ segment: seg, deleted: null }]),
    ]
  ) {
    assert.deepEqual([...again.marksOf(0)], [...seg.marksOf(0)]);
    assert.equal(
      hitSnippet({ id: "a", score: 1, segment: again, doc: 0 }, terms),
      s,
    );
  }
  // After dropping doc a, doc b's marks are still its own (empty).
  const merged = mergeSegments([{
    segment: seg,
    deleted: Uint8Array.of(1, 0),
  }]);
  assert.equal(merged.marksOf(0).length, 0);
});

Deno.test("a version 1 segment file (no stored offsets) still loads, with the offsets computed", () => {
  const a = new Analyzer();
  const seg = buildSegment([
    { id: "a", user_id: 1, created: 1, name: "n", body: "one two three four" },
  ], a);
  const v1 = sealEnvelope(
    SEGMENT_KIND,
    1,
    encodeCbor([
      seg.ids,
      seg.users,
      seg.created,
      seg.names,
      seg.bodies,
      seg.lens,
      seg.fields.map((f) => [f.terms, f.df, f.blockStart, f.blockCount]),
      [
        seg.postings.bytes,
        seg.postings.lastDoc,
        seg.postings.docOffset,
        seg.postings.posOffset,
        seg.postings.maxTf,
        seg.postings.minLen,
      ],
    ]),
  );
  const back = decodeSegment(v1);
  assert.deepEqual([...back.marksOf(0)], [...seg.marksOf(0)]);
  assert.deepEqual([...back.marksOf(0)], tokenMarks("one two three four"));
});
