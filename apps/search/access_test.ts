// Who may call what in a search cluster: user tokens by role on the
// coordinator, the peer secret (and nothing else) on a shard's internal
// routes, a coordinator with another cluster's secret refused by the
// shards, Host and cross-site checks.
import assert from "node:assert/strict";
import { createCoordinatorApp } from "./coordinator_app.ts";
import { createShardApp } from "./shard_app.ts";
import { ShardStore } from "./shard_store.ts";
import { testAccess } from "./_test_access.ts";

/** Status and error code of a call. */
async function outcome(
  res: Response,
): Promise<{ status: number; code?: string }> {
  const body = await res.json();
  return { status: res.status, code: body.error?.code };
}

/** A GET with a chosen Host header (fetch always sends the URL's own). */
async function statusWithHost(
  port: number,
  path: string,
  host: string,
  authorization: string,
): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(
      new TextEncoder().encode(
        `GET ${path} HTTP/1.1\r\nhost: ${host}\r\nauthorization: ${authorization}\r\nconnection: close\r\n\r\n`,
      ),
    );
    const buf = new Uint8Array(4096);
    const n = await conn.read(buf);
    const head = new TextDecoder().decode(buf.subarray(0, n ?? 0));
    return Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1]);
  } finally {
    conn.close();
  }
}

Deno.test("search access: roles on the coordinator, the peer secret on shards, Host and cross-site checks", async () => {
  const dir = await Deno.makeTempDir();
  const auth = await testAccess();
  const other = await testAccess(); // another cluster's secrets
  const store = await ShardStore.open(dir, { sync: "never" });
  const shard = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    createShardApp(store, { shard: 0, replica: 0 }, auth.access).fetch,
  );
  const shardUrl = `http://127.0.0.1:${shard.addr.port}`;
  const coord = createCoordinatorApp(
    { shards: [[shardUrl]], writeTimeoutMs: 5000, searchTimeoutMs: 5000 },
    auth.access,
  );
  const stranger = createCoordinatorApp(
    { shards: [[shardUrl]], writeTimeoutMs: 5000, searchTimeoutMs: 5000 },
    other.access,
  );
  const front = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    coord.app.fetch,
  );
  const base = `http://127.0.0.1:${front.addr.port}`;
  const ndjson = { "content-type": "application/x-ndjson" };
  const doc = JSON.stringify({
    id: "d1",
    user_id: 7,
    name: "wing",
    body: "a wing flutter test",
  });
  try {
    // No token, an unknown token: 401.
    assert.deepEqual(await outcome(await fetch(`${base}/v1/search?q=wing`)), {
      status: 401,
      code: "unauthorized",
    });
    assert.deepEqual(
      await outcome(
        await fetch(`${base}/v1/stats`, { headers: other.as("admin") }),
      ),
      { status: 401, code: "unauthorized" },
    );
    // A read token may not index or delete.
    assert.deepEqual(
      await outcome(
        await fetch(`${base}/v1/docs`, {
          method: "POST",
          headers: { ...auth.as("read"), ...ndjson },
          body: doc,
        }),
      ),
      { status: 403, code: "forbidden" },
    );
    // A write token indexes; a read token searches, lists and reads stats.
    const indexed = await fetch(`${base}/v1/docs`, {
      method: "POST",
      headers: { ...auth.as("write"), ...ndjson },
      body: doc,
    });
    assert.equal(indexed.status, 200, await indexed.clone().text());
    await indexed.body?.cancel();
    const found = await fetch(`${base}/v1/search?q=flutter`, {
      headers: auth.as("read"),
    });
    assert.equal(found.status, 200);
    assert.deepEqual(
      (await found.json()).hits.map((h: { id: string }) => h.id),
      ["d1"],
    );
    for (
      const path of ["/v1/users/7/docs", "/v1/stats", "/metrics", "/v1/docs/d1"]
    ) {
      const r = await fetch(`${base}${path}`, { headers: auth.as("read") });
      assert.equal(r.status, 200, path);
      await r.body?.cancel();
    }
    assert.deepEqual(
      await outcome(
        await fetch(`${base}/v1/docs/d1`, {
          method: "DELETE",
          headers: auth.as("read"),
        }),
      ),
      { status: 403, code: "forbidden" },
    );
    // A shard's internal routes: every user token is refused, the peer secret passes.
    for (const who of ["read", "write", "admin"] as const) {
      assert.deepEqual(
        await outcome(
          await fetch(`${shardUrl}/internal/describe`, {
            headers: auth.as(who),
          }),
        ),
        { status: 401, code: "unauthorized" },
        who,
      );
      assert.deepEqual(
        await outcome(
          await fetch(`${shardUrl}/internal/doc/d1`, {
            headers: auth.as(who),
          }),
        ),
        { status: 401, code: "unauthorized" },
        who,
      );
      assert.deepEqual(
        await outcome(
          await fetch(`${shardUrl}/internal/write`, {
            method: "POST",
            headers: { ...auth.as(who), "content-type": "application/json" },
            body: JSON.stringify({ add: [], delete: ["d1"] }),
          }),
        ),
        { status: 401, code: "unauthorized" },
        who,
      );
      for (const route of ["/internal/build", "/internal/apply"]) {
        assert.deepEqual(
          await outcome(
            await fetch(`${shardUrl}${route}`, {
              method: "POST",
              headers: {
                ...auth.as(who),
                "content-type": "application/octet-stream",
              },
              body: new Uint8Array([1, 2, 3]),
            }),
          ),
          { status: 401, code: "unauthorized" },
          `${who} ${route}`,
        );
      }
    }
    const described = await fetch(`${shardUrl}/internal/describe`, {
      headers: auth.as("peer"),
    });
    assert.equal(described.status, 200);
    await described.body?.cancel();
    // A coordinator holding another cluster's peer secret gets nothing from the shard.
    const refusedWrite = await stranger.app.request("/v1/docs", {
      method: "POST",
      headers: { ...other.as("write"), ...ndjson },
      body: JSON.stringify({ id: "x", user_id: 1, name: "n", body: "b" }),
    });
    assert.equal(refusedWrite.status, 503);
    await refusedWrite.body?.cancel();
    const refusedSearch = await stranger.app.request("/v1/search?q=flutter", {
      headers: other.as("read"),
    });
    assert.equal((await refusedSearch.json()).partial, true);
    // Browser safety: a foreign Host, a cross-site POST, a text/plain POST.
    const admin = auth.as("admin").authorization;
    assert.equal(
      await statusWithHost(front.addr.port, "/v1/stats", "evil.example", admin),
      421,
    );
    assert.equal(
      await statusWithHost(shard.addr.port, "/health", "evil.example", admin),
      421,
    );
    assert.equal(
      await statusWithHost(front.addr.port, "/v1/stats", "localhost", admin),
      200,
    );
    assert.deepEqual(
      await outcome(
        await fetch(`${base}/v1/docs`, {
          method: "POST",
          headers: {
            ...auth.as("admin"),
            ...ndjson,
            "sec-fetch-site": "cross-site",
          },
          body: doc,
        }),
      ),
      { status: 403, code: "cross_origin" },
    );
    assert.deepEqual(
      await outcome(
        await fetch(`${base}/v1/docs`, {
          method: "POST",
          headers: { ...auth.as("admin"), "content-type": "text/plain" },
          body: doc,
        }),
      ),
      { status: 415, code: "unsupported_media_type" },
    );
  } finally {
    await coord.close();
    await stranger.close();
    await front.shutdown();
    await shard.shutdown();
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
