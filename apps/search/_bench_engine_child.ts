// Benchmark helper for benches/search.bench.ts: measures ONE engine in a
// fresh process (started with --expose-gc) so engines do not pay for each
// other's garbage: indexing time, heap retained by the index after a forced
// GC, and top-10 query latency over the seeded queries (one warm-up pass,
// then timed passes). Prints one JSON line.
import { create, insertMultiple, search as oramaSearch } from "@orama/orama";
import FlexSearch from "flexsearch";
import MiniSearch from "minisearch";
import { Analyzer } from "./analyzer.ts";
import { parseQuery } from "./query_parser.ts";
import { ShardIndex } from "./shard_index.ts";
import { syntheticCorpus, syntheticQueries } from "./synthetic_corpus.ts";

const [engine, n, seed, queryCount, passes] = Deno.args;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --v8-flags=--expose-gc");
const docs = [...syntheticCorpus({ docs: Number(n), seed: Number(seed) })];
const queries = syntheticQueries(Number(queryCount), { seed: Number(seed) });
gc();
const before = Deno.memoryUsage().heapUsed;
const t0 = performance.now();
let query: (q: string) => unknown;
if (engine === "strata") {
  const s = new ShardIndex();
  s.add(docs);
  s.refresh();
  const a = new Analyzer();
  query = (q) => s.searchLocal(parseQuery(q, a), 10).hits;
} else if (engine === "MiniSearch") {
  const m = new MiniSearch({
    fields: ["name", "body"],
    idField: "id",
    searchOptions: { boost: { name: 2 } },
  });
  m.addAll(docs);
  query = (q) => m.search(q).slice(0, 10);
} else if (engine === "FlexSearch") {
  const f = new FlexSearch.Document({
    document: { id: "id", index: ["name", "body"] },
    tokenize: "strict",
  });
  for (const d of docs) f.add(d);
  query = (q) => f.search(q, { limit: 10 });
} else if (engine === "Orama") {
  const o = create({ schema: { name: "string", body: "string" } as const });
  await insertMultiple(
    o,
    docs.map((d) => ({ id: d.id, name: d.name, body: d.body })),
    5000,
  );
  query = (q) =>
    oramaSearch(o, { term: q, limit: 10, threshold: 1, boost: { name: 2 } });
} else {
  throw new Error(`unknown engine ${engine}`);
}
const indexMs = performance.now() - t0;
gc();
const heapBytes = Deno.memoryUsage().heapUsed - before;
let sink = 0;
for (const q of queries) sink += query(q) ? 1 : 0;
gc();
const lat: number[] = [];
const t1 = performance.now();
for (let p = 0; p < Number(passes); p++) {
  for (const q of queries) {
    const s = performance.now();
    sink += query(q) ? 1 : 0;
    lat.push(performance.now() - s);
  }
}
const totalMs = performance.now() - t1;
lat.sort((a, b) => a - b);
const pct = (p: number) =>
  lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]!;
console.log(JSON.stringify({
  engine,
  indexMs,
  heapBytes,
  queries: lat.length,
  totalMs,
  p50Ms: pct(0.5),
  p99Ms: pct(0.99),
  sink,
}));
