import assert from "node:assert/strict";
import { Analyzer } from "./analyzer.ts";
import { parseQuery, PROXIMITY_WEIGHT } from "./query_parser.ts";
import { isSearchError } from "./search_error.ts";

const a = new Analyzer();
const both = ["name", "body"];

Deno.test("plain words are optional (OR) terms, analyzed like documents", () => {
  const q = parseQuery("Heated Slabs", a);
  assert.deepEqual(q.should, [
    { kind: "term", fields: both, term: "heat" },
    { kind: "term", fields: both, term: "slab" },
    // Adjacent plain words are also an optional, lightly weighted phrase.
    {
      kind: "phrase",
      fields: both,
      terms: ["heat", "slab"],
      offsets: [0, 1],
      weight: PROXIMITY_WEIGHT,
    },
  ]);
  assert.deepEqual(q.must, []);
  assert.deepEqual(
    parseQuery("Heated Slabs", a, { proximity: false }).should.length,
    2,
  );
});

Deno.test("AND makes both neighbours required, OR and NOT work as in Lucene", () => {
  const q = parseQuery("wing AND flutter OR drag NOT noise", a);
  assert.deepEqual(q.must.map((c) => c.kind === "term" && c.term), [
    "wing",
    "flutter",
  ]);
  assert.deepEqual(q.should.map((c) => c.kind === "term" && c.term), ["drag"]);
  assert.deepEqual(q.mustNot.map((c) => c.kind === "term" && c.term), ["nois"]);
});

Deno.test("+ and - mark required and excluded clauses; op=and requires all", () => {
  const q = parseQuery("+wing -drag lift", a);
  assert.equal(q.must.length, 1);
  assert.equal(q.mustNot.length, 1);
  assert.equal(q.should.length, 1);
  assert.equal(
    parseQuery("wing lift", a, { defaultOperator: "and" }).must.length,
    2,
  );
});

Deno.test("phrases keep stop-word gaps and field and user filters apply", () => {
  const q = parseQuery('name:"flow of air" user:42 body:drag', a);
  assert.deepEqual(q.should[0], {
    kind: "phrase",
    fields: ["name"],
    terms: ["flow", "air"],
    offsets: [0, 2],
  });
  assert.deepEqual(q.should[1], {
    kind: "term",
    fields: ["body"],
    term: "drag",
  });
  assert.equal(q.user, 42);
});

Deno.test("a hyphenated word becomes a phrase and term* a prefix", () => {
  const q = parseQuery("heat-transfer aerodyn*", a);
  assert.equal(q.should[0]!.kind, "phrase");
  assert.deepEqual(q.should[1], {
    kind: "prefix",
    fields: both,
    prefix: "aerodyn",
  });
});

Deno.test("bad queries are refused with a clear bad_query error", () => {
  const bad: Array<[string, RegExp]> = [
    ["", /empty/],
    ["   ", /empty/],
    ['"unbalanced phrase', /unbalanced quote.*column 1/],
    ["x ".repeat(9000), /18000 characters/],
    ["the of and", /nothing to search for/],
    ["-wing", /nothing to search for/],
    ["user:abc wing", /user: needs a non-negative integer/],
    ["* wing", /prefix query needs/],
    [Array.from({ length: 70 }, (_, i) => `+w${i}`).join(" "), /70 clauses/],
    [
      Array.from({ length: 1100 }, (_, i) => `w${i}`).join(" "),
      /1100 distinct words; at most 1024/,
    ],
  ];
  for (const [q, msg] of bad) {
    assert.throws(
      () => parseQuery(q, a),
      (e) => isSearchError(e, "bad_query") && msg.test(e.message),
      q,
    );
  }
});

Deno.test("natural-language words: query stop words dropped, repeats merged into a weight", () => {
  const q = parseQuery(
    "what are the effects of heating on the wing, and why does heating matter",
    a,
  );
  assert.deepEqual(
    q.should.filter((c) => c.kind === "term").map((c) =>
      c.kind === "term" && [c.term, c.weight ?? 1]
    ),
    [["effect", 1], ["heat", 2], ["wing", 1], ["matter", 1]],
  );
  // Proximity: each pair of neighbouring kept words, with the distance the
  // dropped stop words leave ("effects of heating": 2).
  assert.deepEqual(
    q.should.filter((c) => c.kind === "phrase").map((c) =>
      c.kind === "phrase" && [...c.terms, c.offsets[1]]
    ),
    [["effect", "heat", 2], ["heat", "wing", 3], ["wing", "heat", 4], [
      "heat",
      "matter",
      1,
    ]],
  );
  // Only query stop words: they are kept rather than leaving nothing.
  const who = parseQuery("who are you", a);
  assert.deepEqual(
    who.should.filter((c) => c.kind === "term").map((c) =>
      c.kind === "term" && c.term
    ),
    ["who", "you"],
  );
  // Quoted, required and field-qualified words keep their stop words.
  const kept = parseQuery('+how "how to fly" name:why wing', a);
  assert.deepEqual(kept.must.map((c) => c.kind === "term" && c.term), ["how"]);
  assert.equal(kept.should[0]!.kind, "phrase");
  assert.deepEqual(
    kept.should.slice(1).map((c) => c.kind === "term" && [c.term, c.fields]),
    [["why", ["name"]], ["wing", ["name", "body"]]],
  );
});
