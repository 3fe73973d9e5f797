/**
 * @module
 * The search *service* against Sphinx, for benches/search.bench.ts: the
 * same SpamAssassin documents in strata's cluster (3 shards × 2 replicas +
 * coordinator, real processes as `deno task search` starts them) and in
 * Sphinx 2.2 (three plain indexes behind one distributed index in one
 * searchd; and three searchd processes behind a coordinator searchd),
 * driven one server at a time by the same closed-loop load generator over
 * loopback for a fixed query set (plain words, phrases, AND, prefix), at 1
 * and 16 clients, top 10, snippets off and on. Also indexing: strata's bulk
 * NDJSON endpoint (2 replicas, fsync before acknowledging) against Sphinx's
 * `indexer` over the same documents.
 */
import type { Connection } from "mysql2/promise";
import {
  readSpamAssassin,
  shardOf,
  startCluster,
  type StoredDocument,
} from "@strata/search";
import { QUICK, type Suite } from "./harness.ts";
import { loadBenchResult, type LoadResult, runLoad } from "./http_load.ts";
import { cpuMs } from "./proc_cpu.ts";
import {
  buildSphinxIndexes,
  type Searchd,
  sphinxConnect,
  sphinxMissing,
  sphinxQuery,
  sphinxQueryWithBodies,
  sphinxSnippetsCall,
  startSphinxMulti,
  startSphinxSingle,
} from "./sphinx_peer.ts";
import { authHeaders } from "@strata/edge";

/** One benchmark query in both syntaxes (same meaning: OR of words, phrase, AND, prefix). */
interface ServiceQuery {
  kind: "words" | "phrase" | "and" | "prefix";
  strata: string;
  sphinx: string;
}

const words = (w: string): ServiceQuery => ({
  kind: "words",
  strata: w,
  sphinx: w.split(" ").join(" | "),
});
const phrase = (p: string): ServiceQuery => ({
  kind: "phrase",
  strata: `"${p}"`,
  sphinx: `"${p}"`,
});
const and = (w: string): ServiceQuery => ({
  kind: "and",
  strata: w.split(" ").join(" AND "),
  sphinx: w,
});
const prefix = (p: string): ServiceQuery => ({
  kind: "prefix",
  strata: `${p}*`,
  sphinx: `${p}*`,
});

/** The fixed query set. */
export const SERVICE_QUERIES: readonly ServiceQuery[] = [
  words("perl module"),
  words("razor"),
  words("free money"),
  words("python script error"),
  words("mortgage rates"),
  phrase("spam filter"),
  phrase("mailing list"),
  phrase("free software"),
  and("linux kernel"),
  and("credit card"),
  and("perl module"),
  prefix("mortg"),
  prefix("secur"),
  prefix("program"),
];

const SHARDS = 3;
const REPLICAS = 2;
const SIZE = 10;
const CLIENTS = [1, 16];
/**
 * How Sphinx answers: no snippets; `SNIPPET(body, query)` in the select
 * list; or the classic two requests (the bodies with the hits, then
 * `CALL SNIPPETS` with them).
 */
const SPHINX_MODES = [null, "SNIPPET()", "CALL SNIPPETS"] as const;
const BATCH = 500;
const BULK_CLIENTS = 4;

/** Runs a load while accounting the CPU time of the server processes `pids`. */
async function measured(
  pids: readonly number[],
  run: () => Promise<LoadResult>,
): Promise<LoadResult & { cpuMsPerQuery: number }> {
  const before = await cpuMs(pids);
  const r = await run();
  const after = await cpuMs(pids);
  // The warm-up's queries are charged too: count them in.
  return { ...r, cpuMsPerQuery: (after - before) / Math.max(1, r.total) };
}

function record(
  suite: Suite,
  group: string,
  name: string,
  r: LoadResult & { cpuMsPerQuery: number },
): void {
  suite.metric(
    `server CPU ms/query · ${group} · ${name}`,
    Math.round(r.cpuMsPerQuery * 1000) / 1000,
  );
  if (r.errors > 0) console.warn(`  ${group} · ${name}: ${r.errors} errors`);
  suite.record(loadBenchResult(group, name, r));
}

const groupOf = (clients: number, snippets: boolean) =>
  `service top-10 · ${clients} client${clients > 1 ? "s" : ""} · snippets ${
    snippets ? "on" : "off"
  }`;

/** Names of the three systems in results. */
export const STRATA = `strata cluster (${SHARDS}×${REPLICAS} + coordinator)`;
export const SPHINX_SINGLE = "Sphinx distributed index (1 searchd)";
export const SPHINX_MULTI = "Sphinx 3 searchd + coordinator searchd";
const STRATA_BULK =
  `strata bulk NDJSON, ${SHARDS} shards × ${REPLICAS} replicas, ${BATCH} docs/request, ${BULK_CLIENTS} in flight`;

const STRATA_BULK_ONE =
  `strata bulk NDJSON, ${SHARDS} shards × 1 replica, no fsync, ${BATCH} docs/request, ${BULK_CLIENTS} in flight`;

export async function loadDocs(limit: number): Promise<StoredDocument[]> {
  const docs: StoredDocument[] = [];
  for await (const d of readSpamAssassin(limit, () => {})) {
    docs.push({ ...d, created: d.created ?? docs.length });
  }
  return docs;
}

/**
 * Indexes `docs` into the cluster at `url` over the bulk NDJSON endpoint:
 * requests of `batch` lines, `inFlight` at a time (as a bulk indexing
 * client would send them).
 * @throws Error when a bulk request fails.
 */
export async function bulkIndex(
  url: string,
  docs: readonly StoredDocument[],
  batch: number,
  inFlight: number,
  token?: string,
): Promise<void> {
  const lines = docs.map((d) => JSON.stringify(d));
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      for (;;) {
        const i = next;
        next += batch;
        if (i >= lines.length) return;
        const res = await fetch(`${url}/v1/docs`, {
          method: "POST",
          headers: {
            ...authHeaders(token),
            "content-type": "application/x-ndjson",
          },
          body: lines.slice(i, i + batch).join("\n"),
        });
        const out = await res.json();
        if (!res.ok) throw new Error(`bulk failed: ${JSON.stringify(out)}`);
      }
    }),
  );
}

/**
 * A {@link runLoad} request: worker `w`'s `seq`th query of
 * {@link SERVICE_QUERIES}, top-10, against the coordinator at `url`;
 * it succeeds when every shard answered (not partial).
 */
export function serviceQuery(
  url: string,
  snippets: boolean,
  token?: string,
): (w: number, seq: number) => Promise<boolean> {
  const headers = authHeaders(token);
  return async (w, seq) => {
    const q = SERVICE_QUERIES[(w + seq) % SERVICE_QUERIES.length]!;
    const res = await fetch(
      `${url}/v1/search?q=${
        encodeURIComponent(q.strata)
      }&size=${SIZE}&snippets=${snippets}`,
      { headers },
    );
    const out = await res.json();
    return res.ok && out.partial === false;
  };
}

/** Runs the whole service comparison and records it in `suite`. */
export async function benchSearchService(suite: Suite): Promise<void> {
  const durationMs = QUICK ? 400 : 5000;
  const warmupMs = QUICK ? 100 : 1000;
  const docs = await loadDocs(QUICK ? 600 : Infinity);
  suite.metric("service corpus (SpamAssassin) docs", docs.length);
  suite.metric("service queries", SERVICE_QUERIES.length);
  suite.metric("service load seconds per run", durationMs / 1000);
  console.log(
    `service: ${docs.length} SpamAssassin documents, ${SERVICE_QUERIES.length} queries`,
  );

  // ---- strata: bulk NDJSON over HTTP into 3×2 real processes, then queries ----
  const dir = await Deno.makeTempDir({ prefix: "strata-search-bench-" });
  try {
    const cluster = await startCluster({
      shards: SHARDS,
      replicas: REPLICAS,
      dataDir: dir,
      sync: "always",
    });
    try {
      const serverPids = () => [
        cluster.coordinator.child.pid,
        ...cluster.replicas.flat().map((p) => p!.child.pid),
      ];
      const cpu0 = await cpuMs(serverPids());
      const t0 = performance.now();
      const token = cluster.secrets?.tokens.admin;
      const auth = authHeaders(token);
      await bulkIndex(cluster.url, docs, BATCH, BULK_CLIENTS, token);
      const indexMs = performance.now() - t0;
      suite.metric(
        "server CPU ms/doc · indexing · strata (coordinator + 6 replicas)",
        ((await cpuMs(serverPids())) - cpu0) / docs.length,
      );
      suite.record({
        group: "indexing over the service (docs/s)",
        name: STRATA_BULK,
        opsPerSec: docs.length / (indexMs / 1000),
        meanNs: (indexMs * 1e6) / docs.length,
        p50Ns: NaN,
        p99Ns: NaN,
        samples: 1,
      });
      // Let the near-real-time refresh and background merges settle.
      await fetch(`${cluster.url}/v1/search?q=warmup`, { headers: auth }).then((
        r,
      ) => r.body?.cancel());
      await new Promise((r) => setTimeout(r, QUICK ? 200 : 2000));
      // Warm up (JIT, and the background merges the bulk load started)
      // before anything is measured, with snippets on and off.
      for (let round = 0; round < (QUICK ? 1 : 10); round++) {
        for (const q of SERVICE_QUERIES) {
          for (const sn of [false, true]) {
            await fetch(
              `${cluster.url}/v1/search?q=${
                encodeURIComponent(q.strata)
              }&size=${SIZE}&snippets=${sn}`,
              { headers: auth },
            ).then((r) => r.body?.cancel());
          }
        }
      }
      await shardSplit(suite, cluster.url, auth);
      const pids = [
        cluster.coordinator.child.pid,
        ...cluster.replicas.flat().map((p) => p!.child.pid),
      ];
      for (const snippets of [false, true]) {
        for (const clients of CLIENTS) {
          const r = await measured(
            pids,
            () =>
              runLoad(
                clients,
                durationMs,
                serviceQuery(cluster.url, snippets, token),
                warmupMs,
              ),
          );
          record(suite, groupOf(clients, snippets), STRATA, r);
        }
      }
    } finally {
      await cluster.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }

  // ---- strata doing what the indexer does: one copy, no fsync ----
  if (!QUICK) {
    const dir1 = await Deno.makeTempDir({ prefix: "strata-search-bench-" });
    try {
      const one = await startCluster({
        shards: SHARDS,
        replicas: 1,
        dataDir: dir1,
        sync: "never",
      });
      try {
        const t0 = performance.now();
        await bulkIndex(
          one.url,
          docs,
          BATCH,
          BULK_CLIENTS,
          one.secrets?.tokens.admin,
        );
        const ms = performance.now() - t0;
        suite.record({
          group: "indexing over the service (docs/s)",
          name: STRATA_BULK_ONE,
          opsPerSec: docs.length / (ms / 1000),
          meanNs: (ms * 1e6) / docs.length,
          p50Ns: NaN,
          p99Ns: NaN,
          samples: 1,
        });
      } finally {
        await one.stop();
      }
    } finally {
      await Deno.remove(dir1, { recursive: true }).catch(() => {});
    }
  }

  // ---- Sphinx ----
  const missing = await sphinxMissing();
  if (missing !== null) {
    console.warn(`Sphinx comparison skipped: ${missing}`);
    suite.metric("sphinx", `skipped: ${missing}`);
    return;
  }
  const sdir = await Deno.makeTempDir({ prefix: "strata-sphinx-bench-" });
  try {
    const ix = await buildSphinxIndexes(
      sdir,
      docs,
      (d) => shardOf(d.id, SHARDS),
      SHARDS,
    );
    suite.record({
      group: "indexing over the service (docs/s)",
      name: "Sphinx indexer (3 plain indexes, from TSV)",
      opsPerSec: docs.length / (ix.indexMs / 1000),
      meanNs: (ix.indexMs * 1e6) / docs.length,
      p50Ns: NaN,
      p99Ns: NaN,
      samples: 1,
    });
    for (
      const [name, start] of [
        [SPHINX_SINGLE, startSphinxSingle],
        [SPHINX_MULTI, startSphinxMulti],
      ] as const
    ) {
      const sd: Searchd = await start(ix);
      try {
        for (const mode of SPHINX_MODES) {
          for (const clients of CLIENTS) {
            const conns: Connection[] = [];
            for (let i = 0; i < clients; i++) {
              conns.push(await sphinxConnect(sd.port));
            }
            try {
              const r = await measured(
                sd.pids,
                () =>
                  runLoad(clients, durationMs, async (w, seq) => {
                    const q =
                      SERVICE_QUERIES[(w + seq) % SERVICE_QUERIES.length]!;
                    const conn = conns[w]!;
                    if (mode !== "CALL SNIPPETS") {
                      const [rows] = await conn.query(
                        sphinxQuery(q.sphinx, SIZE, mode === "SNIPPET()"),
                      );
                      return Array.isArray(rows);
                    }
                    const [rows] = await conn.query(
                      sphinxQueryWithBodies(q.sphinx, SIZE),
                    );
                    if (!Array.isArray(rows)) return false;
                    if (rows.length === 0) return true;
                    const [snips] = await conn.query(
                      sphinxSnippetsCall(
                        (rows as Array<{ body: string }>).map((x) => x.body),
                        q.sphinx,
                      ),
                    );
                    return Array.isArray(snips) && snips.length === rows.length;
                  }, warmupMs),
              );
              record(
                suite,
                groupOf(clients, mode !== null),
                mode === null ? name : `${name} · ${mode}`,
                r,
              );
            } finally {
              await Promise.all(conns.map((c) => c.end().catch(() => {})));
            }
          }
        }
      } finally {
        await sd.stop();
      }
    }
  } finally {
    await Deno.remove(sdir, { recursive: true }).catch(() => {});
  }

  // ---- ratios and goals ----
  const idx = "indexing over the service (docs/s)";
  suite.compare(
    "indexing over HTTP (bulk NDJSON, 2 replicas, fsync per bulk request) vs Sphinx indexer (TSV, no fsync)",
    "throughput",
    suite.get(idx, STRATA_BULK).opsPerSec,
    suite.get(idx, "Sphinx indexer (3 plain indexes, from TSV)").opsPerSec,
    { op: ">=", value: 1 },
  );
  if (!QUICK) {
    suite.compare(
      "indexing over HTTP, 1 replica, no fsync (one copy, as the indexer builds) vs Sphinx indexer (TSV, no fsync)",
      "throughput",
      suite.get(idx, STRATA_BULK_ONE).opsPerSec,
      suite.get(idx, "Sphinx indexer (3 plain indexes, from TSV)").opsPerSec,
    );
  }
  for (const snippets of [true, false]) {
    for (const clients of CLIENTS) {
      const g = groupOf(clients, snippets);
      const s = suite.get(g, STRATA);
      for (const base of [SPHINX_MULTI, SPHINX_SINGLE]) {
        // With snippets, Sphinx's faster snippet method is the peer.
        const peer = snippets
          ? SPHINX_MODES.filter((m) => m !== null).map((m) => `${base} · ${m}`)
            .reduce((a, b) =>
              suite.get(g, a).opsPerSec >= suite.get(g, b).opsPerSec ? a : b
            )
          : base;
        const p = suite.get(g, peer);
        const goal = snippets && base === SPHINX_MULTI;
        suite.compare(
          `queries/s, ${clients} client(s), snippets ${
            snippets ? "on" : "off"
          } vs ${peer}`,
          "throughput",
          s.opsPerSec,
          p.opsPerSec,
          goal ? { op: ">=", value: 1 } : undefined,
        );
        suite.compare(
          `server CPU per query, ${clients} client(s), snippets ${
            snippets ? "on" : "off"
          } vs ${peer}`,
          "cpu time",
          Number(suite.metrics[`server CPU ms/query · ${g} · ${STRATA}`]),
          Number(suite.metrics[`server CPU ms/query · ${g} · ${peer}`]),
        );
        if (clients === 16) {
          suite.compare(
            `p99, 16 clients, snippets ${snippets ? "on" : "off"} vs ${peer}`,
            "time",
            s.p99Ns,
            p.p99Ns,
            goal ? { op: "<=", value: 1 } : undefined,
          );
        }
      }
    }
  }
  suite.compare(
    "p50, 1 client, snippets on vs the 2 ms goal",
    "time",
    suite.get(groupOf(1, true), STRATA).p50Ns,
    2e6,
    { op: "<=", value: 1 },
  );
}

/** Where a shard's time goes: the shards' own scoring vs snippet time over the query set (snippets on). */
async function shardSplit(
  suite: Suite,
  url: string,
  headers: Record<string, string>,
): Promise<void> {
  let search = 0;
  let snippet = 0;
  for (let round = 0; round < (QUICK ? 2 : 20); round++) {
    for (const q of SERVICE_QUERIES) {
      const out = await (await fetch(
        `${url}/v1/search?q=${encodeURIComponent(q.strata)}&size=${SIZE}`,
        { headers },
      )).json();
      for (const s of out.shards) {
        search += s.search_ms;
        snippet += s.snippet_ms;
      }
    }
  }
  suite.metric("shard time scoring (ms, sum over the query set)", search);
  suite.metric("shard time building snippets (ms, same queries)", snippet);
  suite.compare(
    "shard snippet time vs shard scoring time (top-10, snippets on)",
    "time",
    snippet,
    search,
    { op: "<=", value: 1 },
  );
}
