import assert from "node:assert/strict";
import { Analyzer } from "./analyzer.ts";
import { type Cluster, startCluster } from "./cluster.ts";
import type { StoredDocument } from "./document.ts";
import { parseQuery } from "./query_parser.ts";
import { ShardIndex } from "./shard_index.ts";
import { shardOf } from "./shard_routing.ts";
import { fetchAs } from "./_test_access.ts";

/** fetch with the cluster's admin token (set once the cluster runs). */
let api: typeof fetch = fetch;

const WORDS = [
  "turbine",
  "blade",
  "vortex",
  "laminar",
  "shock",
  "nozzle",
  "plate",
  "heat",
  "flux",
  "wing",
  "panel",
  "flutter",
  "mach",
  "cone",
  "drag",
  "lift",
  "jet",
  "noise",
  "shell",
  "buckling",
];

function corpus(
  n: number,
): Array<Omit<StoredDocument, "created"> & { created: number }> {
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const pick = () => WORDS[Math.floor(rnd() ** 2 * WORDS.length)]!;
  return Array.from({ length: n }, (_, i) => ({
    id: `doc-${i}`,
    user_id: i % 7,
    name: `${pick()} ${pick()}`,
    body: Array.from({ length: 30 }, pick).join(" "),
    created: 1000 + i,
  }));
}

async function json(res: Response): Promise<Record<string, unknown>> {
  return await res.json() as Record<string, unknown>;
}

Deno.test({
  name:
    "a 3×2 cluster of real processes indexes, searches like one index, survives replica loss and reports partial results",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const dir = await Deno.makeTempDir();
    let cluster: Cluster | undefined;
    try {
      cluster = await startCluster({
        shards: 3,
        replicas: 2,
        dataDir: dir,
        sync: "never",
        flushDocs: 100,
        timeoutMs: 3000,
      });
      api = fetchAs(cluster.secrets!.tokens.admin);
      const base = cluster.url;
      const docs = corpus(600);

      await t.step(
        "bulk NDJSON indexing acknowledges every document",
        async () => {
          const body = docs.map((d) => JSON.stringify(d)).join("\n");
          const res = await api(`${base}/v1/docs`, { method: "POST", body });
          const out = await json(res);
          assert.equal(res.status, 200, JSON.stringify(out));
          assert.equal(out.indexed, 600);
        },
      );

      await t.step(
        "sharded results equal one index over all documents",
        async () => {
          const single = new ShardIndex();
          single.add(docs);
          for (
            const q of [
              "turbine blade",
              "vortex AND shock",
              '"heat flux" wing',
              "nozz* drag",
              "mach user:3",
            ]
          ) {
            const res = await api(
              `${base}/v1/search?q=${encodeURIComponent(q)}&size=20`,
            );
            const out = await json(res);
            assert.equal(res.status, 200, JSON.stringify(out));
            assert.equal(out.partial, false);
            const want =
              single.searchLocal(parseQuery(q, new Analyzer()), 20).hits;
            const hits = out.hits as Array<
              { id: string; score: number; snippet: string }
            >;
            assert.deepEqual(
              hits.map((h) => [h.id, h.score]),
              want.map((h) => [h.id, h.score]),
              q,
            );
            assert.ok(
              hits.length > 0 && hits.some((h) => h.snippet.includes("<mark>")),
              q,
            );
          }
        },
      );

      await t.step(
        "pagination, user listings, deletes, stats and metrics work",
        async () => {
          const p1 = await json(await api(`${base}/v1/search?q=wing&size=5`));
          const p2 = await json(
            await api(`${base}/v1/search?q=wing&size=5&from=5`),
          );
          const all = await json(
            await api(`${base}/v1/search?q=wing&size=10`),
          );
          const ids = (o: Record<string, unknown>) =>
            (o.hits as Array<{ id: string }>).map((h) => h.id);
          assert.deepEqual([...ids(p1), ...ids(p2)], ids(all));

          const user = await json(
            await api(`${base}/v1/users/3/docs?size=5`),
          );
          const udocs = user.docs as Array<
            { id: string; user_id: number; created: number }
          >;
          assert.equal(user.total, docs.filter((d) => d.user_id === 3).length);
          assert.deepEqual(udocs.map((d) => d.id), [
            "doc-598",
            "doc-591",
            "doc-584",
            "doc-577",
            "doc-570",
          ]);

          const del = await api(`${base}/v1/docs/doc-598`, {
            method: "DELETE",
          });
          assert.equal(del.status, 200);
          await del.body?.cancel();
          const again = await api(`${base}/v1/docs/doc-598`, {
            method: "DELETE",
          });
          assert.equal(again.status, 404);
          assert.equal(
            ((await json(again)).error as { code: string }).code,
            "not_found",
          );
          const user2 = await json(
            await api(`${base}/v1/users/3/docs?size=1`),
          );
          assert.equal((user2.docs as Array<{ id: string }>)[0]!.id, "doc-591");

          const stats = await json(await api(`${base}/v1/stats`));
          assert.equal(stats.docs, 599);
          const metrics = await (await api(`${base}/metrics`)).text();
          assert.match(metrics, /search_query_latency_ms_count \d+/);
        },
      );

      await t.step(
        "bad input gets a 4xx JSON error and the service keeps serving",
        async () => {
          const cases: Array<
            [string, RequestInit | undefined, number, RegExp]
          > = [
            ["/v1/search?q=", undefined, 400, /empty/],
            ["/v1/search", undefined, 400, /empty/],
            [
              "/v1/search?q=wing&size=100000",
              undefined,
              400,
              /size must be between 1 and 100/,
            ],
            ["/v1/search?q=wing&size=abc", undefined, 400, /whole number/],
            ["/v1/search?q=%22unbalanced", undefined, 400, /unbalanced quote/],
            [
              `/v1/search?q=${"x".repeat(20_000)}`,
              undefined,
              400,
              /at most 16384/,
            ],
            [
              "/v1/search?q=wing&from=5000",
              undefined,
              400,
              /from must be between/,
            ],
            [
              "/v1/docs",
              {
                method: "POST",
                body:
                  '{"id":"a","user_id":1,"name":"x"}\n{not json\n{"id":"b"}',
              },
              400,
              /line 2/,
            ],
            ["/v1/docs", { method: "POST", body: "" }, 400, /no documents/],
            ["/v1/users/abc/docs", undefined, 400, /user listing/],
            ["/v1/nope", undefined, 404, /no route/],
          ];
          for (const [path, init, status, msg] of cases) {
            const res = await api(`${base}${path}`, init);
            const out = await json(res);
            assert.equal(res.status, status, path);
            const err = out.error as {
              code: string;
              message: string;
              details?: Array<{ line: number }>;
            };
            assert.match(err.message, msg, path);
            assert.ok(
              !/\bat file:|\n\s+at /.test(JSON.stringify(out)),
              "no stack trace",
            );
            if (
              path === "/v1/docs" && init?.body &&
              String(init.body).includes("not json")
            ) {
              assert.deepEqual(err.details!.map((d) => d.line), [2, 3]);
            }
          }
          const ok = await api(`${base}/v1/search?q=wing`);
          assert.equal(ok.status, 200);
          await ok.body?.cancel();
        },
      );

      await t.step(
        "killing one replica during a query load keeps every query succeeding",
        async () => {
          let failures = 0;
          let done = 0;
          const load = (async () => {
            for (let i = 0; i < 60; i++) {
              const res = await api(
                `${base}/v1/search?q=${WORDS[i % WORDS.length]}&size=10`,
              );
              const out = await json(res);
              if (res.status !== 200 || out.partial !== false) failures++;
              done++;
            }
          })();
          while (done < 10) await new Promise((r) => setTimeout(r, 5));
          await cluster!.kill(1, 0);
          await load;
          assert.equal(failures, 0);
        },
      );

      await t.step(
        "killing both replicas of a shard gives partial: true naming the shard",
        async () => {
          await cluster!.kill(1, 1);
          const res = await api(`${base}/v1/search?q=turbine&size=10`);
          const out = await json(res);
          assert.equal(res.status, 200);
          assert.equal(out.partial, true);
          assert.deepEqual(out.failed_shards, [1]);
          assert.ok(
            (out.hits as unknown[]).length > 0,
            "the other shards still answer",
          );
          const write = await api(`${base}/v1/docs`, {
            method: "POST",
            body: corpus(30).map((d) =>
              JSON.stringify({ ...d, id: `late-${d.id}` })
            ).join("\n"),
          });
          const wout = await json(write);
          assert.equal(write.status, 503);
          assert.deepEqual(
            (wout.error as { details: { failed_shards: number[] } }).details
              .failed_shards,
            [1],
          );
        },
      );

      await t.step(
        "a restarted replica reloads its segments and log and the shard answers again",
        async () => {
          const p = await cluster!.restart(1, 0);
          const recovery = p.ready.recovery as {
            segments: number;
            replayed: number;
          };
          assert.ok(recovery.segments > 0, "segment files were reloaded");
          const want = new ShardIndex();
          want.add(docs.filter((d) => d.id !== "doc-598"));
          // The write refused for shard 1 still landed on shards 0 and 2.
          want.add(
            corpus(30).map((d) => ({ ...d, id: `late-${d.id}` })).filter((d) =>
              shardOf(d.id, 3) !== 1
            ),
          );
          let out: Record<string, unknown> = {};
          // The coordinator retries a failed replica once its penalty (2 s) expires.
          for (let i = 0; i < 100; i++) {
            out = await json(
              await api(`${base}/v1/search?q=turbine&size=10`),
            );
            if (out.partial === false) break;
            await new Promise((r) => setTimeout(r, 100));
          }
          assert.equal(out.partial, false);
          const hits = (out.hits as Array<{ id: string; score: number }>).map((
            h,
          ) => [h.id, h.score]);
          const expected = want.searchLocal(
            parseQuery("turbine", new Analyzer()),
            10,
          ).hits.map((h) => [h.id, h.score]);
          assert.deepEqual(hits, expected);
        },
      );
    } finally {
      await cluster?.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
