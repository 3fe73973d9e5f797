import assert from "node:assert/strict";
import { join } from "node:path";
import { type Cluster, startCluster } from "../cluster.ts";
import { main } from "../cli.ts";
import { readSearchToken, SearchClient, SearchClientError } from "./client.ts";

/** Runs the CLI in process; its exit status and what it printed. */
async function cli(
  args: string[],
): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    const code = await main(args);
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

Deno.test({
  name:
    "SearchClient and search:cli against a 2×1 cluster: index, search, get, delete, user, status, errors, tokens",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "search-client-" });
    let cluster: Cluster | undefined;
    try {
      cluster = await startCluster({
        shards: 2,
        replicas: 1,
        dataDir: dir,
        sync: "never",
      });
      const tokens = cluster.secrets!.tokens;
      const admin = new SearchClient(cluster.url, { token: tokens.admin });

      await t.step("index, search, get, user listing", async () => {
        const n = await admin.index(
          Array.from({ length: 30 }, (_, i) => ({
            id: `c${i}`,
            user_id: i % 3,
            name: i % 2 ? "turbine blade" : "wing panel",
            body: `flutter of panel ${i} in a wind tunnel`,
            created: 1000 + i,
          })),
          { batch: 7 },
        );
        assert.equal(n, 30);
        const r = await admin.search("turbine", { size: 5 });
        assert.equal(r.partial, false);
        assert.equal(r.hits.length, 5);
        assert.ok(r.hits.every((h) => h.name === "turbine blade"));
        assert.match(r.hits[0]!.snippet, /<mark>|flutter/);
        const off = await admin.search("turbine", { snippets: false });
        assert.ok(off.hits.every((h) => h.snippet === ""));
        const and = await admin.search("wing flutter", {
          op: "and",
          size: 100,
        });
        assert.equal(and.hits.length, 15);
        const doc = await admin.get("c3");
        assert.deepEqual(doc, {
          id: "c3",
          user_id: 0,
          name: "turbine blade",
          body: "flutter of panel 3 in a wind tunnel",
          created: 1003,
        });
        assert.equal(await admin.get("nope"), null);
        const u = await admin.userDocs(1, { size: 3 });
        assert.equal(u.total, 10);
        assert.deepEqual(u.docs.map((d) => d.id), ["c28", "c25", "c22"]);
      });

      await t.step("delete; errors carry the server's code", async () => {
        assert.equal(await admin.delete("c0"), true);
        assert.equal(await admin.delete("c0"), false);
        assert.equal(await admin.get("c0"), null);
        await assert.rejects(
          admin.search('"unbalanced'),
          (e) =>
            e instanceof SearchClientError && e.code === "bad_query" &&
            e.status === 400 && /unbalanced quote/.test(e.message),
        );
        const reader = new SearchClient(cluster!.url, { token: tokens.read });
        assert.equal((await reader.search("wing")).partial, false);
        await assert.rejects(
          reader.delete("c1"),
          (e) => e instanceof SearchClientError && e.status === 403,
        );
        await assert.rejects(
          new SearchClient(cluster!.url).search("wing"),
          (e) => e instanceof SearchClientError && e.status === 401,
        );
        await assert.rejects(
          new SearchClient("http://127.0.0.1:1").status(),
          (e) => e instanceof SearchClientError && e.code === "unreachable",
        );
      });

      await t.step("status", async () => {
        const s = await admin.status();
        assert.equal(s.shards.length, 2);
        assert.equal(s.docs, 29);
        assert.equal(s.catching_up, 0);
      });

      await t.step(
        "tokens: flag, file, STRATA_TOKEN, default dir",
        async () => {
          const file = join(dir, "admin.token");
          assert.equal(await readSearchToken({ token: "x" }), "x");
          assert.equal(
            await readSearchToken({ tokenFile: file }),
            tokens.admin,
          );
          assert.equal(
            await readSearchToken({ defaultDir: dir }),
            tokens.admin,
          );
          const old = Deno.env.get("STRATA_TOKEN");
          Deno.env.set("STRATA_TOKEN", "from-env");
          try {
            assert.equal(
              await readSearchToken({ defaultDir: dir }),
              "from-env",
            );
          } finally {
            if (old === undefined) Deno.env.delete("STRATA_TOKEN");
            else Deno.env.set("STRATA_TOKEN", old);
          }
          await assert.rejects(
            readSearchToken({ tokenFile: join(dir, "missing") }),
          );
        },
      );

      await t.step(
        "the CLI: index (NDJSON and one file), search, get, delete, status, usage",
        async () => {
          const base = [
            "--url",
            cluster!.url,
            "--token-file",
            join(dir, "admin.token"),
          ];
          const nd = join(dir, "docs.ndjson");
          await Deno.writeTextFile(
            nd,
            [
              JSON.stringify({
                id: "n1",
                user_id: 5,
                name: "nozzle",
                body: "supersonic nozzle flow",
              }),
              "",
              JSON.stringify({
                id: "n2",
                user_id: 5,
                name: "cone",
                body: "drag of a cone",
              }),
            ].join("\n"),
          );
          let r = await cli([...base, "index", nd]);
          assert.equal(r.code, 0, r.err);
          assert.deepEqual(JSON.parse(r.out), { indexed: 2 });
          const txt = join(dir, "notes.txt");
          await Deno.writeTextFile(txt, "a plain text file about shock waves");
          r = await cli([...base, "index", txt, "--user", "9"]);
          assert.equal(r.code, 0, r.err);
          r = await cli([...base, "search", "shock", "waves", "--json"]);
          assert.equal(r.code, 0, r.err);
          assert.equal(JSON.parse(r.out).hits[0].id, "notes.txt");
          r = await cli([...base, "search", "nozzle"]);
          assert.match(r.out, /^1 hits in .* ms\n[\d.]+ {2}n1 {2}nozzle/);
          r = await cli([...base, "get", "n2"]);
          assert.equal(JSON.parse(r.out).body, "drag of a cone");
          r = await cli([...base, "delete", "n2"]);
          assert.equal(r.code, 0);
          r = await cli([...base, "get", "n2"]);
          assert.equal(r.code, 1);
          assert.match(r.err, /n2: not found/);
          r = await cli([...base, "user", "5"]);
          assert.deepEqual(
            JSON.parse(r.out).docs.map((d: { id: string }) => d.id),
            ["n1"],
          );
          r = await cli([...base, "status"]);
          assert.equal(r.code, 0);
          assert.equal(JSON.parse(r.out).docs, 31);
          const bad = join(dir, "bad.ndjson");
          await Deno.writeTextFile(bad, '{"id":"b1"}\n');
          r = await cli([...base, "index", bad]);
          assert.equal(r.code, 1);
          assert.match(r.err, /^bad_document: /);
          r = await cli([...base, "search", '"open']);
          assert.equal(r.code, 1);
          assert.match(r.err, /bad_query: unbalanced quote/);
          r = await cli(["--url", cluster!.url, "--token", "wrong", "status"]);
          assert.equal(r.code, 1);
          assert.match(r.err, /^unauthorized: /);
          assert.equal((await cli(["--help"])).code, 0);
          assert.match((await cli(["--help"])).out, /commands:/);
          r = await cli([...base, "frobnicate"]);
          assert.equal(r.code, 2);
          assert.match(r.err, /unknown command: frobnicate/);
          r = await cli(["--size", "x", "search", "a"]);
          assert.equal(r.code, 2);
          const env = Deno.env.get("STRATA_SEARCH_URL");
          Deno.env.delete("STRATA_SEARCH_URL");
          try {
            r = await cli(["status"]);
          } finally {
            if (env !== undefined) Deno.env.set("STRATA_SEARCH_URL", env);
          }
          assert.equal(r.code, 2);
          assert.match(r.err, /no coordinator: pass --url/);
        },
      );
    } finally {
      await cluster?.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
