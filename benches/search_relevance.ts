/**
 * @module
 * Relevance of strata's default ranking on three classic test collections
 * it was not tuned on (Cranfield, MED, CACM; read in place from
 * `../shared/fixtures/`), measured through the HTTP API of a real cluster
 * (3 shards × 2 replicas + coordinator, default settings), against lunr and
 * MiniSearch with their defaults, in the same run. Every engine gets the
 * same documents (title → `name`, abstract → `body`; MED has no title) and
 * the same plain-word queries (the question's words, lowercased, without
 * punctuation, so no engine's query syntax is triggered), returns its top
 * 100, and is scored with binary judgements: nDCG@10 and MAP (over the top
 * 100).
 *
 * `relevanceRows()` returns the rows (bench:search can call it);
 * run directly (`deno task bench:search-relevance`) it writes
 * benches/results/search-relevance.json with the goals: strata above the
 * best peer on every collection, with one default configuration.
 */
import lunr from "lunr";
import MiniSearch from "minisearch";
import process from "node:process";
import {
  Analyzer,
  COLLECTION_NAMES,
  type CollectionName,
  loadCollection,
  mergeShardStats,
  parseQuery,
  pruneQuery,
  scoreRun,
  ShardIndex,
  startCluster,
  statsRequestFor,
  type TestCollection,
} from "@strata/search";
import { QUICK, Suite } from "./harness.ts";

/** One engine on one collection. */
export interface RelevanceRow {
  collection: CollectionName;
  engine: "strata" | "lunr" | "MiniSearch";
  /** Judged queries averaged over. */
  queries: number;
  ndcg10: number;
  map: number;
  /** Mean time per query (strata: over HTTP, top 100 with snippets; peers: in process). */
  meanQueryMs: number;
  /** Queries the engine refused or failed (they score 0). */
  errors: number;
  /**
   * strata only: 20 pasted paragraphs of 100 words (consecutive abstracts
   * of the collection), top 10: the mean time the coordinator reports
   * (`took_ms`: statistics, pruning, shards, merge) and as the client saw it.
   */
  paragraph100?: { tookMs: number; clientMs: number };
  /**
   * strata only: the same paragraphs on one in-process index (parse,
   * statistics, pruning, top 10, no snippets): mean wall time and mean CPU
   * time of this process (the CPU figure is less affected by a loaded machine).
   */
  paragraph100InProcess?: { wallMs: number; cpuMs: number };
}

/** 20 pasted paragraphs of 100 words: consecutive words of the collection's abstracts. */
export function paragraphQueries(c: TestCollection, n = 20): string[] {
  const words = c.docs.flatMap((d) => plainWords(d.body).split(" "))
    .filter((w) => w !== "");
  return Array.from({ length: n }, (_, i) => {
    const start = Math.floor((i / n) * Math.max(0, words.length - 100));
    return words.slice(start, start + 100).join(" ");
  });
}

function inProcessParagraphs(
  c: TestCollection,
): { wallMs: number; cpuMs: number } {
  const index = new ShardIndex();
  index.add(c.docs);
  index.refresh();
  const analyzer = new Analyzer();
  const qs = paragraphQueries(c);
  const run = () => {
    for (const q of qs) {
      const parsed = parseQuery(q, analyzer);
      const context = mergeShardStats([index.stats(statsRequestFor(parsed))]);
      index.search(pruneQuery(parsed, context.stats), 10, context);
    }
  };
  run(); // warm-up
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  run();
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return {
    wallMs: wall / qs.length,
    cpuMs: (cpu.user + cpu.system) / 1000 / qs.length,
  };
}

/** Hits each engine returns per query (the API's page cap). */
export const RUN_DEPTH = 100;

/** The words of a question, lowercased and space-separated: no engine's query syntax applies. */
export function plainWords(text: string): string {
  return (text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []).join(" ");
}

type Run = Map<string, string[]>;

async function timed(
  queries: TestCollection["queries"],
  search: (q: string) => Promise<string[]> | string[],
): Promise<{ run: Run; meanMs: number; errors: number }> {
  const run: Run = new Map();
  let errors = 0;
  let total = 0;
  for (const q of queries) {
    const text = plainWords(q.text);
    const t0 = performance.now();
    try {
      run.set(q.qid, (await search(text)).slice(0, RUN_DEPTH));
    } catch {
      errors++;
      run.set(q.qid, []);
    }
    total += performance.now() - t0;
  }
  return { run, meanMs: total / Math.max(1, queries.length), errors };
}

// lunr ships JavaScript only; the little of its API used here, typed.
interface LunrBuilder {
  ref(name: string): void;
  field(name: string): void;
  add(doc: object): void;
}
type Lunr = (config: (this: LunrBuilder) => void) => {
  search(q: string): Array<{ ref: string }>;
};

function lunrRun(c: TestCollection) {
  const idx = (lunr as unknown as Lunr)(function () {
    this.ref("id");
    this.field("name");
    this.field("body");
    for (const d of c.docs) this.add(d);
  });
  return timed(c.queries, (q) => idx.search(q).map((r) => r.ref));
}

function miniRun(c: TestCollection) {
  const ms = new MiniSearch({ fields: ["name", "body"] });
  ms.addAll(c.docs);
  return timed(c.queries, (q) => ms.search(q).map((r) => String(r.id)));
}

async function strataRun(c: TestCollection, dataDir: string) {
  const cluster = await startCluster({
    shards: 3,
    replicas: 2,
    dataDir,
    sync: "never",
  });
  try {
    const auth = { authorization: `Bearer ${cluster.secrets!.tokens.admin}` };
    const ndjson = c.docs.map((d) => JSON.stringify(d)).join("\n");
    const res = await fetch(`${cluster.url}/v1/docs`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/x-ndjson" },
      body: ndjson,
    });
    if (!res.ok) throw new Error(`indexing failed: ${await res.text()}`);
    await res.body?.cancel();
    // One warm-up query per collection so JIT and connection setup are not timed.
    await (await fetch(`${cluster.url}/v1/search?q=warm`, { headers: auth }))
      .body?.cancel();
    const out = await timed(c.queries, async (q) => {
      const r = await fetch(
        `${cluster.url}/v1/search?size=${RUN_DEPTH}&q=${encodeURIComponent(q)}`,
        { headers: auth },
      );
      const j = await r.json();
      if (!r.ok) throw new Error(JSON.stringify(j));
      return (j.hits as Array<{ id: string }>).map((h) => h.id);
    });
    let took = 0;
    let client = 0;
    const paragraphs = paragraphQueries(c);
    const n = paragraphs.length;
    for (const q of paragraphs) {
      const t0 = performance.now();
      const r = await fetch(
        `${cluster.url}/v1/search?size=10&q=${encodeURIComponent(q)}`,
        { headers: auth },
      );
      const j = await r.json();
      client += performance.now() - t0;
      if (!r.ok) throw new Error(`paragraph query: ${JSON.stringify(j)}`);
      took += j.took_ms;
    }
    return { ...out, paragraph100: { tookMs: took / n, clientMs: client / n } };
  } finally {
    await cluster.stop();
  }
}

/**
 * Measures every engine on every collection present (absent collections
 * are skipped with a message) and returns the rows.
 */
export async function relevanceRows(
  log: (line: string) => void = console.log,
): Promise<RelevanceRow[]> {
  const rows: RelevanceRow[] = [];
  const tmp = await Deno.makeTempDir({ prefix: "strata-relevance-" });
  try {
    for (const name of COLLECTION_NAMES) {
      const c = await loadCollection(name);
      if ("missing" in c) {
        log(c.missing);
        continue;
      }
      const engines: Array<
        [RelevanceRow["engine"], () => ReturnType<typeof timed>]
      > = [
        ["strata", () => strataRun(c, `${tmp}/${name}`)],
        ["lunr", () => lunrRun(c)],
        ["MiniSearch", () => miniRun(c)],
      ];
      for (const [engine, run] of engines) {
        const r = await run();
        const s = scoreRun(r.run, c.qrels);
        const row: RelevanceRow = {
          collection: name,
          engine,
          queries: s.queries,
          ndcg10: s.ndcg10,
          map: s.map,
          meanQueryMs: r.meanMs,
          errors: r.errors,
          paragraph100:
            (r as { paragraph100?: RelevanceRow["paragraph100"] }).paragraph100,
          paragraph100InProcess: engine === "strata"
            ? inProcessParagraphs(c)
            : undefined,
        };
        rows.push(row);
        log(
          `  ${name} · ${engine}: nDCG@10 ${s.ndcg10.toFixed(4)}  MAP ${
            s.map.toFixed(4)
          }  mean ${r.meanMs.toFixed(2)} ms/query${
            r.errors ? `  (${r.errors} failed)` : ""
          }${
            row.paragraph100
              ? `; 100-word paragraphs, top 10: took_ms ${
                row.paragraph100.tookMs.toFixed(2)
              }, client ${row.paragraph100.clientMs.toFixed(2)} ms`
              : ""
          }${
            row.paragraph100InProcess
              ? `; in process ${
                row.paragraph100InProcess.wallMs.toFixed(2)
              } ms (CPU ${row.paragraph100InProcess.cpuMs.toFixed(2)} ms)`
              : ""
          }`,
        );
      }
    }
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
  return rows;
}

/** Records the rows and the goals (strata ÷ best peer ≥ 1 on each collection) in a suite. */
export function recordRelevance(suite: Suite, rows: RelevanceRow[]): void {
  const r4 = (x: number) => Math.round(x * 10000) / 10000;
  for (const r of rows) {
    suite.metric(`${r.collection} nDCG@10 · ${r.engine}`, r4(r.ndcg10));
    suite.metric(`${r.collection} MAP · ${r.engine}`, r4(r.map));
    suite.metric(
      `${r.collection} mean query ms · ${r.engine}`,
      Math.round(r.meanQueryMs * 100) / 100,
    );
    if (r.paragraph100InProcess) {
      suite.metric(
        `${r.collection} 100-word paragraph in process ms · strata`,
        Math.round(r.paragraph100InProcess.wallMs * 100) / 100,
      );
      suite.metric(
        `${r.collection} 100-word paragraph in process CPU ms · strata`,
        Math.round(r.paragraph100InProcess.cpuMs * 100) / 100,
      );
    }
    if (r.paragraph100) {
      suite.metric(
        `${r.collection} 100-word paragraph took_ms · strata`,
        Math.round(r.paragraph100.tookMs * 100) / 100,
      );
      suite.metric(
        `${r.collection} 100-word paragraph client ms · strata`,
        Math.round(r.paragraph100.clientMs * 100) / 100,
      );
    }
    if (r.errors) {
      suite.metric(`${r.collection} failed queries · ${r.engine}`, r.errors);
    }
  }
  for (const name of COLLECTION_NAMES) {
    const strata = rows.find((r) =>
      r.collection === name && r.engine === "strata"
    );
    const peers = rows.filter((r) =>
      r.collection === name && r.engine !== "strata"
    );
    if (!strata || peers.length === 0) continue;
    for (const metric of ["ndcg10", "map"] as const) {
      const best = peers.reduce((a, b) => (b[metric] > a[metric] ? b : a));
      suite.compare(
        `${name} ${
          metric === "ndcg10" ? "nDCG@10" : "MAP"
        } vs the best peer (${best.engine})`,
        "relevance",
        strata[metric],
        best[metric],
        { op: ">=", value: 1 },
      );
    }
  }
}

if (import.meta.main) {
  const suite = new Suite(
    "search-relevance",
    "strata's default ranking through its HTTP API (3 shards × 2 replicas) vs lunr and MiniSearch (defaults) on Cranfield, MED and CACM: nDCG@10 and MAP, binary judgements, plain-word queries, top 100",
  );
  if (QUICK) {
    console.log(
      "(STRATA_BENCH_QUICK has no effect: the collections are small)",
    );
  }
  const rows = await relevanceRows();
  recordRelevance(suite, rows);
  await suite.finish();
}
