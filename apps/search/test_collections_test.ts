import assert from "node:assert/strict";
import {
  COLLECTION_NAMES,
  loadCollection,
  parseSmart,
} from "./test_collections.ts";

// Counts from each collection's README.
const expected = {
  cranfield: { docs: 1400, queries: 225, judged: 225, pairs: 1612 },
  med: { docs: 1033, queries: 30, judged: 30, pairs: 696 },
  cacm: { docs: 3204, queries: 64, judged: 52, pairs: 796 },
};

for (const name of COLLECTION_NAMES) {
  const c = await loadCollection(name);
  if ("missing" in c) console.warn(c.missing);
  Deno.test({
    name: `${name} parses with the README's counts and binary judgements`,
    ignore: "missing" in c,
    fn: () => {
      if ("missing" in c) return;
      const e = expected[name];
      assert.equal(c.docs.length, e.docs);
      assert.equal(c.queries.length, e.queries);
      assert.equal(c.qrels.size, e.judged);
      const gains = [...c.qrels.values()].flatMap((m) => [...m.values()]);
      assert.equal(gains.length, e.pairs);
      assert.ok(gains.every((g) => g === 1));
      assert.ok(c.docs.every((d) => /^\d+$/.test(d.id)));
      if (name === "med") assert.ok(c.docs.every((d) => d.name === ""));
      if (name === "cacm") {
        assert.equal(
          c.docs[0]!.name,
          "Preliminary Report-International Algebraic Language",
        );
        assert.ok(!c.queries.some((q) => q.qid === "0"));
      }
    },
  });
}

Deno.test("SMART records: fields on their own lines, CRLF, text joined by spaces", () => {
  const r = parseSmart(
    ".I 7\r\n.T\r\nA title\r\n.W\r\n  two\r\nlines \r\n.I 8\r\n.W\r\nx\r\n",
  );
  assert.deepEqual(r.map((x) => [x.id, Object.fromEntries(x.fields)]), [
    ["7", { T: "A title", W: "two lines" }],
    ["8", { W: "x" }],
  ]);
});
