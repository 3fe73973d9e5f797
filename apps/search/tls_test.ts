/**
 * A search cluster over TLS end to end: 2 shards × 2 replicas and the
 * coordinator as real processes serving HTTPS with one self-signed
 * certificate; the coordinator writes to the shards (fetch) and reads from
 * them (its persistent connection pool) over TLS, trusting that
 * certificate. Plain HTTP and clients that do not trust it get nowhere.
 */
import assert from "node:assert/strict";
import { selfSignedCert } from "@strata/edge";
import { SearchClient } from "./client/client.ts";
import { startCluster } from "./cluster.ts";

Deno.test({
  name:
    "search over TLS: shards and coordinator serve HTTPS with a self-signed certificate; index, search and delete work; plain HTTP and untrusting clients are refused",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "search-tls-" });
    const tls = await selfSignedCert(dir);
    const cluster = await startCluster({
      shards: 2,
      replicas: 2,
      dataDir: `${dir}/data`,
      sync: "never",
      tls,
    });
    const client = cluster.httpClient!;
    const auth = {
      authorization: `Bearer ${cluster.secrets!.tokens.admin}`,
    };
    try {
      await t.step("every process serves https", () => {
        assert.match(cluster.url, /^https:\/\//);
        for (const p of cluster.replicas.flat()) {
          assert.match(p!.url, /^https:\/\//);
        }
      });
      await t.step(
        "documents are indexed on both shards and found",
        async () => {
          const docs = Array.from({ length: 20 }, (_, i) =>
            JSON.stringify({
              id: `d${i}`,
              user_id: i % 3,
              name: `note ${i}`,
              body: i % 2 ? "encrypted transport works" : "plain words",
            }));
          const res = await fetch(`${cluster.url}/v1/docs`, {
            method: "POST",
            headers: { ...auth, "content-type": "application/x-ndjson" },
            client,
            body: docs.join("\n"),
          });
          assert.equal(res.status, 200, await res.text());
          const found = await (await fetch(
            `${cluster.url}/v1/search?q=encrypted&size=20`,
            { headers: auth, client },
          )).json();
          assert.equal(found.partial, false);
          assert.equal(found.hits.length, 10);
          const del = await fetch(`${cluster.url}/v1/docs/d1`, {
            method: "DELETE",
            headers: auth,
            client,
          });
          assert.equal(del.status, 200, await del.text());
          const after = await (await fetch(
            `${cluster.url}/v1/search?q=encrypted&size=20`,
            { headers: auth, client },
          )).json();
          assert.equal(after.hits.length, 9);
        },
      );
      await t.step(
        "SearchClient and search:cli with --ca-cert find documents",
        async () => {
          const sc = new SearchClient(cluster.url, {
            token: cluster.secrets!.tokens.admin,
            httpClient: client,
          });
          const r = await sc.search("encrypted", { size: 3 });
          assert.equal(r.hits.length, 3);
          const out = await new Deno.Command(Deno.execPath(), {
            args: [
              "run",
              "-A",
              new URL("./cli.ts", import.meta.url).pathname,
              "--url",
              cluster.url,
              `--token=${cluster.secrets!.tokens.read}`,
              "--ca-cert",
              tls.certFile,
              "search",
              "encrypted",
              "--json",
            ],
            stdout: "piped",
            stderr: "piped",
          }).output();
          const text = new TextDecoder().decode(out.stdout);
          assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
          assert.match(text, /"hits"/);
        },
      );
      await t.step(
        "plain HTTP and a client without the CA get nowhere",
        async () => {
          await assert.rejects(
            fetch(`http://127.0.0.1:${cluster.coordinator.port}/v1/stats`, {
              headers: auth,
              signal: AbortSignal.timeout(5000),
            }).then((r) => r.body?.cancel()),
          );
          await assert.rejects(
            fetch(`${cluster.url}/v1/stats`, {
              headers: auth,
              signal: AbortSignal.timeout(5000),
            }).then((r) => r.body?.cancel()),
            (e: Error) => /certificate|UnknownIssuer/i.test(String(e.cause)),
          );
        },
      );
    } finally {
      await cluster.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
