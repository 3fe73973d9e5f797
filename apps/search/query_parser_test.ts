import assert from "node:assert/strict";
import { Analyzer } from "./analyzer.ts";
import { parseQuery } from "./query_parser.ts";
import { isSearchError } from "./search_error.ts";

const a = new Analyzer();
const both = ["name", "body"];

Deno.test("plain words are optional (OR) terms, analyzed like documents", () => {
  const q = parseQuery("Heated Slabs", a);
  assert.deepEqual(q.should, [
    { kind: "term", fields: both, term: "heat" },
    { kind: "term", fields: both, term: "slab" },
  ]);
  assert.deepEqual(q.must, []);
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
    ["x".repeat(5000), /5000 characters/],
    ["the of and", /nothing to search for/],
    ["-wing", /nothing to search for/],
    ["user:abc wing", /user: needs a non-negative integer/],
    ["* wing", /prefix query needs/],
    [Array.from({ length: 70 }, (_, i) => `w${i}`).join(" "), /70 clauses/],
  ];
  for (const [q, msg] of bad) {
    assert.throws(
      () => parseQuery(q, a),
      (e) => isSearchError(e, "bad_query") && msg.test(e.message),
      q,
    );
  }
});
