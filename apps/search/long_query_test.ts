import assert from "node:assert/strict";
import { Analyzer } from "./analyzer.ts";
import { createCoordinatorApp } from "./coordinator_app.ts";
import { mergeShardStats, statsRequestFor } from "./global_stats.ts";
import {
  type Clause,
  MAX_QUERY_CHARS,
  MAX_QUERY_TERMS,
  type ParsedQuery,
  parseQuery,
} from "./query_parser.ts";
import { QUERY_STOP_WORDS } from "./query_stop_words.ts";
import { MAX_SCORED_TERMS, pruneQuery } from "./query_pruning.ts";
import { scatterGather } from "./scatter_gather.ts";
import { ShardIndex } from "./shard_index.ts";
import { shardOf } from "./shard_routing.ts";
import { seededRandom, syntheticCorpus } from "./synthetic_corpus.ts";
import { testAccess } from "./_test_access.ts";

const a = new Analyzer();
const docs = [...syntheticCorpus({ docs: 3000, seed: 5, vocabulary: 4000 })];

/** A "pasted paragraph": `n` words taken from consecutive documents' bodies. */
function paragraph(n: number, seed: number): string {
  const rnd = seededRandom(seed);
  const words: string[] = [];
  let d = Math.floor(rnd() * docs.length);
  while (words.length < n) {
    words.push(...docs[d++ % docs.length]!.body.split(" "));
  }
  return words.slice(0, n).join(" ");
}

const term = (t: string, weight?: number): Clause => ({
  kind: "term",
  fields: ["name", "body"],
  term: t,
  ...(weight ? { weight } : {}),
});

Deno.test("pruning keeps the words with the highest weight × idf, in query order", () => {
  const q: ParsedQuery = {
    must: [],
    should: [term("common"), term("rare"), term("mid", 3), term("absent")],
    mustNot: [],
    user: null,
  };
  const stats = {
    docCount: 1000,
    fieldLength: { name: 1000, body: 10000 },
    df: {
      "name\u0000common": 900,
      "body\u0000common": 950,
      "body\u0000rare": 2,
      "body\u0000mid": 100,
    },
  };
  // idf with the largest per-field df: mid ln(1 + 900.5/100.5) × 3 ≈ 6.9 >
  // rare ≈ 6.0 > common ≈ 0.05; absent (df 0) goes first.
  const pruned = pruneQuery(q, stats, 2);
  assert.deepEqual(
    pruned.should.map((c) => c.kind === "term" && c.term),
    ["rare", "mid"],
  );
  assert.equal(pruneQuery(q, stats, 4), q, "a short query is left alone");
});

Deno.test("a 500-word paragraph is a normal query: merged, pruned, and ranked exactly as one index", () => {
  const text = paragraph(500, 1);
  assert.ok(text.length < MAX_QUERY_CHARS);
  const q = parseQuery(text, a);
  const terms = a.analyze(text, QUERY_STOP_WORDS).terms;
  const words = q.should.filter((c) => c.kind === "term");
  assert.equal(words.length, new Set(terms).size);
  assert.ok(words.length > MAX_SCORED_TERMS);
  assert.equal(
    words.reduce((n, c) => n + ((c.kind === "term" && c.weight) || 1), 0),
    terms.length,
    "every occurrence is counted in a weight",
  );
  const one = new ShardIndex();
  one.add(docs);
  const shards = [0, 1, 2].map(() => new ShardIndex());
  for (const d of docs) shards[shardOf(d.id, 3)]!.add([d]);
  const context = mergeShardStats([one.stats(statsRequestFor(q))]);
  const pruned = pruneQuery(q, context.stats);
  const kept = pruned.should.filter((c) => c.kind === "term");
  assert.equal(kept.length, MAX_SCORED_TERMS);
  // Proximity clauses stay only between kept words.
  const keptTerms = new Set(kept.map((c) => c.kind === "term" && c.term));
  const near = pruned.should.filter((c) => c.kind === "phrase");
  assert.ok(near.length > 0);
  for (const c of near) {
    assert.ok(c.kind === "phrase" && c.terms.every((t) => keptTerms.has(t)));
  }
  const hits = one.search(pruned, 10, context);
  assert.equal(hits.strategy, "wand");
  assert.equal(hits.hits.length, 10);
  // Sharded with global statistics: the same hits and scores.
  assert.deepEqual(
    scatterGather(shards, pruned, 0, 10).map((h) => [h.id, h.score]),
    hits.hits.map((h) => [h.id, h.score]),
  );
  // Block-max WAND returns what exhaustive scoring does: scoring every
  // document (k = all) and cutting at 10 gives the same list.
  const all = one.search(pruned, 1000, context).hits.slice(0, 10);
  assert.deepEqual(
    all.map((h) => [h.id, h.score]),
    hits.hits.map((h) => [h.id, h.score]),
  );
});

Deno.test("a repeated word's weight scores as that many copies of it", () => {
  const one = new ShardIndex();
  one.add(docs.slice(0, 500));
  const text = paragraph(40, 2);
  const first = text.split(" ")[0]!;
  const merged = parseQuery(`${text} ${first} ${first}`, a);
  const copies: ParsedQuery = {
    ...merged,
    should: merged.should.flatMap((c) =>
      c.kind === "term" && c.weight
        ? Array.from({ length: c.weight }, () => ({ ...c, weight: undefined }))
        : [c]
    ),
  };
  const context = mergeShardStats([one.stats(statsRequestFor(merged))]);
  const x = one.search(merged, 20, context).hits;
  const y = one.search(copies, 20, context).hits;
  assert.deepEqual(x.map((h) => h.id), y.map((h) => h.id));
  x.forEach((h, i) => assert.ok(Math.abs(h.score - y[i]!.score) < 1e-9));
});

Deno.test("over HTTP: a paragraph up to the bound is answered; over it, a clear 400", async () => {
  // The shards are unreachable: parsing and limits happen before any shard is asked.
  const auth = await testAccess();
  const { app } = createCoordinatorApp({
    shards: [["http://127.0.0.1:9"]],
    searchTimeoutMs: 2000,
  }, auth.access);
  const read = { headers: auth.as("read") };
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    app.fetch,
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  try {
    // A 300-word paragraph pasted over and over up to the bound (so the
    // distinct words stay under their own limit).
    const long = `${paragraph(300, 3)} `.repeat(20).slice(0, MAX_QUERY_CHARS);
    const ok = await fetch(
      `${base}/v1/search?q=${encodeURIComponent(long)}`,
      read,
    );
    assert.equal(ok.status, 200, await ok.clone().text());
    assert.equal((await ok.json()).partial, true);

    const tooLong = await fetch(
      `${base}/v1/search?q=${encodeURIComponent(long + " more words")}`,
      read,
    );
    assert.equal(tooLong.status, 400);
    const e1 = (await tooLong.json()).error;
    assert.equal(e1.code, "bad_query");
    assert.match(e1.message, /at most 16384 are allowed/);

    const many = Array.from({ length: MAX_QUERY_TERMS + 1 }, (_, i) => `w${i}`)
      .join(" ");
    const tooMany = await fetch(
      `${base}/v1/search?q=${encodeURIComponent(many)}`,
      read,
    );
    assert.equal(tooMany.status, 400);
    assert.match((await tooMany.json()).error.message, /1025 distinct words/);
  } finally {
    await server.shutdown();
  }
});
