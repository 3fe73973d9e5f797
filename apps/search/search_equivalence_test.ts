import assert from "node:assert/strict";
import fc from "fast-check";
import { Analyzer } from "./analyzer.ts";
import { CombinedFieldScorer, DEFAULT_BM25, idf } from "./bm25.ts";
import {
  DEFAULT_FIELD_BOOSTS,
  type StoredDocument,
  TEXT_FIELDS,
} from "./document.ts";
import { parseQuery } from "./query_parser.ts";
import { scatterGather } from "./scatter_gather.ts";
import { ShardIndex } from "./shard_index.ts";
import { shardOf } from "./shard_routing.ts";

const VOCAB = [
  "wing",
  "flow",
  "heat",
  "drag",
  "lift",
  "shock",
  "wave",
  "mach",
  "slab",
  "panel",
  "boundary",
  "layer",
  "plate",
  "cone",
  "jet",
  "noise",
  "vortex",
  "blade",
  "shell",
  "buckling",
];
const wordArb = fc.integer({ min: 0, max: 399 }).map((x) =>
  VOCAB[Math.floor(Math.sqrt(x))]!
);
const textArb = (max: number) =>
  fc.array(wordArb, { maxLength: max }).map((w) => w.join(" "));
const corpusArb = fc.array(
  fc.record({
    name: textArb(4),
    body: textArb(25),
    user_id: fc.integer({ min: 0, max: 4 }),
  }),
  { minLength: 1, maxLength: 120 },
).map((docs) =>
  docs.map((d, i): StoredDocument => ({ ...d, id: `d${i}`, created: i }))
);
const queryArb = fc.oneof(
  fc.array(wordArb, { minLength: 1, maxLength: 4 }).map((w) => w.join(" ")),
  fc.tuple(wordArb, wordArb).map(([a, b]) => `${a} AND ${b}`),
  fc.tuple(wordArb, wordArb, wordArb).map(([a, b, c]) => `"${a} ${b}" ${c}`),
  fc.tuple(wordArb, wordArb).map(([a, b]) => `${a.slice(0, 2)}* ${b}`),
  fc.tuple(wordArb, wordArb, fc.integer({ min: 0, max: 4 })).map(([a, b, u]) =>
    `${a} ${b} user:${u}`
  ),
  fc.tuple(wordArb, wordArb, wordArb).map(([a, b, c]) => `${a} ${b} -${c}`),
  fc.tuple(wordArb, wordArb).map(([a, b]) => `name:${a} body:${b}`),
);

/** Adds docs in a few batches, sealing some, so there are several segments and a buffer. */
function fill(
  index: ShardIndex,
  docs: StoredDocument[],
  seals: number[],
): void {
  let start = 0;
  for (const cut of [...seals, docs.length]) {
    const end = Math.min(docs.length, Math.max(start, cut));
    index.add(docs.slice(start, end));
    if (end < docs.length) index.refresh();
    start = end;
  }
}

Deno.test("sharded top-n (S = 1..8) equals the single-index top-n exactly", () => {
  const analyzer = new Analyzer();
  fc.assert(
    fc.property(
      corpusArb,
      queryArb,
      fc.integer({ min: 1, max: 8 }),
      fc.integer({ min: 0, max: 5 }),
      fc.integer({ min: 1, max: 15 }),
      fc.array(fc.integer({ min: 0, max: 120 }), { maxLength: 3 }),
      fc.array(fc.nat(), { maxLength: 5 }),
      (docs, q, shards, from, size, seals, deletions) => {
        const parsed = parseQuery(q, analyzer);
        const single = new ShardIndex();
        fill(single, docs, seals.sort((a, b) => a - b));
        const parts = Array.from({ length: shards }, () => new ShardIndex());
        const routed = Array.from(
          { length: shards },
          () => [] as StoredDocument[],
        );
        for (const d of docs) routed[shardOf(d.id, shards)]!.push(d);
        parts.forEach((p, s) =>
          fill(p, routed[s]!, seals.map((x) => Math.floor(x / shards)))
        );
        for (const n of deletions) {
          // Deleting the same ids everywhere keeps the statistics equal too.
          const id = docs[n % docs.length]!.id;
          single.delete(id);
          parts[shardOf(id, shards)]!.delete(id);
        }
        const want = single.searchLocal(parsed, from + size).hits.slice(from);
        const got = scatterGather(parts, parsed, from, size);
        assert.deepEqual(
          got.map((h) => [h.id, h.score]),
          want.map((h) => [h.id, h.score]),
        );
      },
    ),
    { numRuns: 250 },
  );
});

/**
 * Exhaustive reference: score every document of a disjunction of words
 * over both fields with BM25F (weighted tf and length summed over the
 * fields in field order, idf from the largest per-field df).
 */
function bruteForce(docs: StoredDocument[], terms: string[], k: number) {
  const a = new Analyzer();
  const analyzed = docs.map((
    d,
  ) => [a.analyze(d.name).terms, a.analyze(d.body).terms]);
  const n = docs.length;
  const scored: Array<{ id: string; score: number }> = [];
  let avg = 0;
  for (const [f, field] of TEXT_FIELDS.entries()) {
    avg += DEFAULT_FIELD_BOOSTS[field] *
      (analyzed.reduce((s, x) => s + x[f]!.length, 0) / n);
  }
  const scorers = new Map<string, CombinedFieldScorer>();
  for (const t of terms) {
    let df = 0;
    for (const f of TEXT_FIELDS.keys()) {
      df = Math.max(df, analyzed.filter((x) => x[f]!.includes(t)).length);
    }
    scorers.set(t, new CombinedFieldScorer(1, idf(n, df), avg, DEFAULT_BM25));
  }
  docs.forEach((d, i) => {
    let score = 0;
    let hit = false;
    for (const t of terms) {
      let tf = 0;
      let len = 0;
      for (const [f, field] of TEXT_FIELDS.entries()) {
        const w = DEFAULT_FIELD_BOOSTS[field];
        tf += w * analyzed[i]![f]!.filter((x) => x === t).length;
        len += w * analyzed[i]![f]!.length;
      }
      if (tf > 0) {
        score += scorers.get(t)!.score(tf, len);
        hit = true;
      }
    }
    if (hit) scored.push({ id: d.id, score });
  });
  scored.sort((x, y) =>
    y.score - x.score || (x.id < y.id ? -1 : x.id > y.id ? 1 : 0)
  );
  return scored.slice(0, k);
}

Deno.test("block-max WAND returns exactly the exhaustive top-k", () => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ name: textArb(3), body: textArb(30) }), {
        minLength: 300,
        maxLength: 700,
      }),
      fc.uniqueArray(wordArb, { minLength: 1, maxLength: 5 }),
      fc.integer({ min: 1, max: 30 }),
      (raw, words, k) => {
        const docs = raw.map((d, i): StoredDocument => ({
          ...d,
          id: `d${i}`,
          user_id: 0,
          created: i,
        }));
        const index = new ShardIndex();
        index.add(docs);
        // BM25F words alone against the brute force below; with the
        // proximity phrases, WAND's top k against scoring every document.
        const res = index.searchLocal(
          parseQuery(words.join(" "), new Analyzer(), { proximity: false }),
          k,
        );
        assert.equal(res.strategy, "wand");
        const near = parseQuery(words.join(" "), new Analyzer());
        const top = index.searchLocal(near, k);
        assert.equal(top.strategy, "wand");
        assert.deepEqual(
          top.hits.map((h) => [h.id, h.score]),
          index.searchLocal(near, docs.length).hits.slice(0, k).map((
            h,
          ) => [h.id, h.score]),
        );
        const terms = words.map((w) => new Analyzer().analyze(w).terms[0]!);
        assert.deepEqual(
          res.hits.map((h) => [h.id, h.score]),
          bruteForce(docs, terms, k).map((h) => [h.id, h.score]),
        );
      },
    ),
    { numRuns: 25 },
  );
});

Deno.test("top-10 with block-max WAND scores far fewer documents than match", () => {
  // Deterministic skewed corpus: "common" is everywhere, "rare" in 1%.
  const docs: StoredDocument[] = [];
  let seed = 42;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let i = 0; i < 20_000; i++) {
    const words = ["common"];
    for (let j = 0; j < 20; j++) {
      words.push(VOCAB[Math.floor(rnd() * VOCAB.length)]!);
    }
    if (i % 100 === 0) words.push("rare", "rare");
    docs.push({
      id: `d${i}`,
      user_id: 0,
      created: i,
      name: "",
      body: words.join(" "),
    });
  }
  const index = new ShardIndex();
  index.add(docs);
  index.refresh();
  const res = index.searchLocal(parseQuery("common rare", new Analyzer()), 10);
  assert.equal(res.hits.length, 10);
  assert.ok(res.hits.every((h) => Number(h.id.slice(1)) % 100 === 0));
  assert.ok(
    res.scored < 2_000,
    `scored ${res.scored} of 20000 matching documents`,
  );
});
