/**
 * bench:search — the sharded search engine (apps/search) against the
 * in-process JavaScript engines a user would pick instead: MiniSearch and
 * Orama (both BM25) and FlexSearch (not BM25; fastest lookups), on the same
 * seeded Zipfian corpus and queries, in one run:
 *
 * - per engine, in its own fresh process: indexing documents/s, the heap
 *   the index retains (forced GC), and top-10 query latency;
 * - top-10 query latency on one index (block-max WAND vs the peers);
 * - scatter-gather (DFS statistics + per-shard top-k + k-way merge) at
 *   1, 2, 4, 8 shards, in process and over HTTP with real shard processes;
 * - k-way heap merge vs concatenate-and-sort for S = 2..64, n = 10..1000;
 * - relevance (MAP, nDCG@10) on Cranfield;
 * - the service over loopback against Sphinx 2.2 (search_service.ts):
 *   queries/s, p50, p99 at 1 and 16 clients, snippets on and off, and
 *   indexing over HTTP against Sphinx's indexer.
 *
 * Goals: indexing faster than MiniSearch; single-shard query latency within
 * 1.5x of the fastest BM25 peer; nDCG@10 at least MiniSearch's.
 */
import { create, insertMultiple, search as oramaSearch } from "@orama/orama";
import FlexSearch from "flexsearch";
import { do_not_optimize } from "mitata";
import MiniSearch from "minisearch";
import {
  Analyzer,
  compareHits,
  concatSortMerge,
  CRANFIELD_INDEX_OPTIONS,
  kwayMerge,
  loadCranfield,
  matchQuery,
  parseQuery,
  scatterGather,
  scoreRun,
  seededRandom,
  ShardIndex,
  shardOf,
  startCluster,
  type StoredDocument,
  syntheticCorpus,
  syntheticQueries,
} from "@strata/search";
import { percentile, QUICK, Suite } from "./harness.ts";
import { recordRelevance, relevanceRows } from "./search_relevance.ts";
import { benchSearchService } from "./search_service.ts";

// STRATA_SEARCH_BENCH=service runs only the service comparison with Sphinx
// (written as results/search-service.json, so a full run's file stays).
if (Deno.env.get("STRATA_SEARCH_BENCH") === "service") {
  const only = new Suite(
    "search-service",
    "apps/search as a service (3×2 processes + coordinator) vs Sphinx 2.2 on the SpamAssassin corpus, over loopback",
  );
  await benchSearchService(only);
  await only.finish();
  Deno.exit(0);
}

const suite = new Suite(
  "search",
  "apps/search (BM25, block-max WAND, DFS scatter-gather, k-way merge) vs MiniSearch, Orama, FlexSearch on a seeded Zipfian corpus and Cranfield",
);

const LONG = Deno.env.get("STRATA_LONG") === "1";
const N = QUICK ? 5_000 : LONG ? 1_000_000 : 100_000;
const CLUSTER_N = QUICK ? 2_000 : 20_000;
const QUERIES = syntheticQueries(QUICK ? 50 : 300, { seed: 11 });
suite.metric("corpus docs", N);
suite.metric("queries", QUERIES.length);

console.log(`generating ${N} Zipfian documents …`);
const docs: StoredDocument[] = [...syntheticCorpus({ docs: N, seed: 11 })];

// ---- each engine in its own fresh process: indexing, retained heap, top-10 latency ----
// (Separate processes so no engine pays for another's garbage collection.)
const CHILD =
  new URL("../apps/search/_bench_engine_child.ts", import.meta.url).pathname;
const G = "query top-10, one index";
const INDEX_G = "indexing (docs/s)";
const ENGINES: Array<[string, string]> = [
  ["strata", "strata (block-max WAND)"],
  ["MiniSearch", "MiniSearch"],
  ["Orama", "Orama"],
  ["FlexSearch", "FlexSearch (no BM25)"],
];
for (const [engine, label] of ENGINES) {
  console.log(`measuring ${engine} in a fresh process …`);
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--v8-flags=--expose-gc",
      CHILD,
      engine,
      String(N),
      "11",
      String(QUERIES.length),
      String(QUICK ? 1 : 3),
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const line = new TextDecoder().decode(out.stdout).trim().split("\n").pop() ??
    "";
  const r = JSON.parse(line) as {
    indexMs: number;
    heapBytes: number;
    queries: number;
    totalMs: number;
    p50Ms: number;
    p99Ms: number;
  };
  suite.record({
    group: INDEX_G,
    name: engine,
    opsPerSec: N / (r.indexMs / 1000),
    meanNs: (r.indexMs * 1e6) / N,
    p50Ns: (r.indexMs * 1e6) / N,
    p99Ns: (r.indexMs * 1e6) / N,
    samples: 1,
  });
  suite.metric(
    `retained heap bytes/doc · ${engine}`,
    Math.round(r.heapBytes / N),
  );
  suite.record({
    group: G,
    name: label,
    opsPerSec: r.queries / (r.totalMs / 1000),
    meanNs: (r.totalMs * 1e6) / r.queries,
    p50Ns: r.p50Ms * 1e6,
    p99Ns: r.p99Ms * 1e6,
    samples: r.queries,
  });
}
suite.compare(
  "indexing throughput vs MiniSearch",
  "throughput",
  suite.get(INDEX_G, "strata").opsPerSec,
  suite.get(INDEX_G, "MiniSearch").opsPerSec,
  { op: ">=", value: 1 },
);
const fastestBm25 = Math.min(
  suite.get(G, "MiniSearch").meanNs,
  suite.get(G, "Orama").meanNs,
);
suite.compare(
  "single-shard query latency (mean) vs the fastest BM25 peer",
  "time",
  suite.get(G, "strata (block-max WAND)").meanNs,
  fastestBm25,
  { op: "<=", value: 1.5 },
);
suite.compare(
  "query latency (mean) vs FlexSearch (no ranking)",
  "time",
  suite.get(G, "strata (block-max WAND)").meanNs,
  suite.get(G, "FlexSearch (no BM25)").meanNs,
);
suite.compare(
  "retained heap vs MiniSearch (index structures; strata's stored fields share the input strings)",
  "bytes",
  Number(suite.metrics["retained heap bytes/doc · strata"]),
  Number(suite.metrics["retained heap bytes/doc · MiniSearch"]),
);

// The in-process strata index for the sections below.
const analyzer = new Analyzer();
const strata = new ShardIndex();
strata.add(docs);
strata.refresh();
{
  // How much work block-max WAND skips.
  let scored = 0;
  let matched = 0;
  for (const q of QUERIES.slice(0, 50)) {
    const parsed = parseQuery(q, analyzer);
    scored += strata.searchLocal(parsed, 10).scored;
    matched += strata.searchLocal(
      { ...parsed, must: [], should: parsed.should },
      1_000_000,
    ).scored;
  }
  suite.metric(
    "block-max WAND: docs scored for top-10 / docs matching (%)",
    Math.round((scored / matched) * 1000) / 10,
  );
}

// ---- scatter-gather in process, 1..8 shards ----
function loadLoop(
  name: string,
  group: string,
  run: (q: string) => void,
  rounds: number,
): void {
  const lat: number[] = [];
  const t = performance.now();
  for (let i = 0; i < rounds; i++) {
    const s = performance.now();
    run(QUERIES[i % QUERIES.length]!);
    lat.push(performance.now() - s);
  }
  const total = performance.now() - t;
  lat.sort((a, b) => a - b);
  suite.record({
    group,
    name,
    opsPerSec: rounds / (total / 1000),
    meanNs: (total * 1e6) / rounds,
    p50Ns: percentile(lat, 0.5) * 1e6,
    p99Ns: percentile(lat, 0.99) * 1e6,
    samples: rounds,
  });
}
for (const S of [1, 2, 4, 8]) {
  const shards = Array.from({ length: S }, () => new ShardIndex());
  const parts: StoredDocument[][] = shards.map(() => []);
  for (const d of docs) parts[shardOf(d.id, S)]!.push(d);
  shards.forEach((s, i) => {
    s.add(parts[i]!);
    s.refresh();
  });
  loadLoop(`${S} shard(s)`, "scatter-gather top-10, in process", (q) => {
    do_not_optimize(scatterGather(shards, parseQuery(q, analyzer), 0, 10));
  }, QUICK ? 100 : 1000);
}

// ---- real shard processes over HTTP, 1..8 shards ----
for (const S of QUICK ? [1, 2] : [1, 2, 4, 8]) {
  const dir = await Deno.makeTempDir();
  const cluster = await startCluster({
    shards: S,
    replicas: 1,
    dataDir: dir,
    sync: "never",
    flushDocs: 50_000,
  });
  try {
    const auth = { authorization: `Bearer ${cluster.secrets!.tokens.admin}` };
    const body: string[] = [];
    for (const d of docs.slice(0, CLUSTER_N)) body.push(JSON.stringify(d));
    for (let i = 0; i < body.length; i += 2000) {
      const res = await fetch(`${cluster.url}/v1/docs`, {
        method: "POST",
        headers: { ...auth, "content-type": "application/x-ndjson" },
        body: body.slice(i, i + 2000).join("\n"),
      });
      if (!res.ok) throw new Error(`bulk failed: ${await res.text()}`);
      await res.body?.cancel();
    }
    // Warm up (refresh, JIT), then 4 concurrent clients.
    for (const q of QUERIES.slice(0, 20)) {
      await (await fetch(
        `${cluster.url}/v1/search?q=${encodeURIComponent(q)}`,
        { headers: auth },
      )).body?.cancel();
    }
    const rounds = QUICK ? 60 : 600;
    const lat: number[] = [];
    let next = 0;
    const t = performance.now();
    await Promise.all([0, 1, 2, 3].map(async () => {
      while (next < rounds) {
        const q = QUERIES[next++ % QUERIES.length]!;
        const s = performance.now();
        const res = await fetch(
          `${cluster.url}/v1/search?q=${encodeURIComponent(q)}&size=10`,
          { headers: auth },
        );
        await res.json();
        lat.push(performance.now() - s);
      }
    }));
    const total = performance.now() - t;
    lat.sort((a, b) => a - b);
    suite.record({
      group: `HTTP cluster top-10, ${CLUSTER_N} docs, 4 clients`,
      name: `${S} shard process(es)`,
      opsPerSec: lat.length / (total / 1000),
      meanNs: (total * 1e6) / lat.length,
      p50Ns: percentile(lat, 0.5) * 1e6,
      p99Ns: percentile(lat, 0.99) * 1e6,
      samples: lat.length,
    });
  } finally {
    await cluster.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

// ---- k-way merge vs concatenate-and-sort ----
{
  const rnd = seededRandom(5);
  for (const S of [2, 4, 8, 16, 32, 64]) {
    for (const n of [10, 100, 1000]) {
      if (QUICK && S * n > 8000) continue;
      const lists = Array.from(
        { length: S },
        (_, s) =>
          Array.from(
            { length: n },
            (_, i) => ({
              id: `s${s}-${i}`,
              score: Math.round(rnd() * 1000) / 10,
            }),
          )
            .sort(compareHits),
      );
      const g = `merge top-${n} of ${S} lists`;
      await suite.bench(
        g,
        "k-way heap merge",
        () => do_not_optimize(kwayMerge(lists, compareHits, n)),
      );
      await suite.bench(
        g,
        "concatenate + sort",
        () => do_not_optimize(concatSortMerge(lists, compareHits, n)),
      );
      suite.compare(
        `k-way merge vs concat+sort, S=${S}, n=${n}`,
        "time",
        suite.get(g, "k-way heap merge").meanNs,
        suite.get(g, "concatenate + sort").meanNs,
        { op: "<=", value: 1 },
      );
    }
  }
}

// ---- Cranfield relevance ----
const cran = await loadCranfield();
if ("missing" in cran) {
  console.warn(cran.missing);
  suite.metric("cranfield", "skipped: fixture absent");
} else {
  const runs = new Map<string, Map<string, string[]>>();
  const st = new ShardIndex(CRANFIELD_INDEX_OPTIONS);
  st.add(cran.docs);
  runs.set(
    "strata",
    new Map(
      cran.queries.map((
        q,
      ) => [
        q.qid,
        st.searchLocal(matchQuery(q.text, analyzer), 1000).hits.map((h) =>
          h.id
        ),
      ]),
    ),
  );
  const ms = new MiniSearch({ fields: ["name", "body"], idField: "id" });
  ms.addAll(cran.docs);
  runs.set(
    "MiniSearch",
    new Map(
      cran.queries.map((
        q,
      ) => [q.qid, ms.search(q.text).slice(0, 1000).map((r) => String(r.id))]),
    ),
  );
  const od = create({ schema: { name: "string", body: "string" } as const });
  await insertMultiple(
    od,
    cran.docs.map((d) => ({ id: d.id, name: d.name, body: d.body })),
  );
  const oramaRun = new Map<string, string[]>();
  for (const q of cran.queries) {
    const r = await oramaSearch(od, {
      term: q.text,
      limit: 1000,
      threshold: 1,
    });
    oramaRun.set(q.qid, r.hits.map((h) => String(h.id)));
  }
  runs.set("Orama", oramaRun);
  const fx = new FlexSearch.Document({
    document: { id: "id", index: ["name", "body"] },
    tokenize: "strict",
  });
  for (const d of cran.docs) fx.add(d);
  runs.set(
    "FlexSearch",
    new Map(cran.queries.map((q) => {
      const seen = new Set<string>();
      for (const f of fx.search(q.text, { limit: 1000, suggest: true })) {
        for (const id of f.result) seen.add(String(id));
      }
      return [q.qid, [...seen]];
    })),
  );
  const scores = new Map(
    [...runs].map(([k, v]) => [k, scoreRun(v, cran.qrels)]),
  );
  for (const [name, s] of scores) {
    suite.metric(`Cranfield MAP · ${name}`, Math.round(s.map * 10000) / 10000);
    suite.metric(
      `Cranfield nDCG@10 · ${name}`,
      Math.round(s.ndcg10 * 10000) / 10000,
    );
    console.log(
      `  Cranfield · ${name}: MAP ${s.map.toFixed(4)}  nDCG@10 ${
        s.ndcg10.toFixed(4)
      }`,
    );
  }
  suite.compare(
    "Cranfield nDCG@10 vs MiniSearch",
    "relevance",
    scores.get("strata")!.ndcg10,
    scores.get("MiniSearch")!.ndcg10,
    { op: ">=", value: 1 },
  );
  suite.compare(
    "Cranfield MAP vs MiniSearch",
    "relevance",
    scores.get("strata")!.map,
    scores.get("MiniSearch")!.map,
  );
}

// ---- the service over the network vs Sphinx (SpamAssassin) ----
await benchSearchService(suite);

// ---- relevance through the HTTP API vs lunr and MiniSearch on Cranfield,
// MED and CACM (also alone: `deno task bench:search-relevance`). The quick
// mode skips it: it starts a cluster per collection.
if (!QUICK) recordRelevance(suite, await relevanceRows());

await suite.finish();
