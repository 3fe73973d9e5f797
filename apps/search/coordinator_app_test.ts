import assert from "node:assert/strict";
import { createCoordinatorApp, MAX_BULK_BYTES } from "./coordinator_app.ts";
import { testAccess } from "./_test_access.ts";

const auth = await testAccess();
/** Headers of a bulk write with the write token. */
const bulk = {
  ...auth.as("write"),
  "content-type": "application/x-ndjson",
};

/** A stand-in shard replica that acknowledges every write (in process). */
function fakeReplica(): {
  url: string;
  writes: number;
  close: () => Promise<void>;
} {
  const state = { writes: 0 };
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: () => {},
  }, async (req) => {
    const body = await req.json();
    state.writes++;
    return Response.json({ added: body.add.length, deleted: 0 });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    get writes() {
      return state.writes;
    },
    close: () => server.shutdown(),
  };
}

// Port 9 (discard) on loopback: connections are refused at once.
const DEAD = "http://127.0.0.1:9";

Deno.test("a write is acknowledged once --ack replicas confirm, and refused with 503 below that", async () => {
  const live = fakeReplica();
  const closers: Array<() => Promise<void>> = [];
  try {
    const body = JSON.stringify({ id: "a", user_id: 1, name: "x", body: "y" });
    const coord = createCoordinatorApp({
      shards: [[live.url, DEAD]],
      ack: 1,
      writeTimeoutMs: 2000,
    }, auth.access);
    closers.push(coord.close);
    const one = coord.app;
    const ok = await one.request("/v1/docs", {
      method: "POST",
      body,
      headers: bulk,
    });
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { indexed: 1, shards: [1] });
    const coordAll = createCoordinatorApp({
      shards: [[live.url, DEAD]],
      writeTimeoutMs: 2000,
    }, auth.access);
    closers.push(coordAll.close);
    const all = coordAll.app;
    const refused = await all.request("/v1/docs", {
      method: "POST",
      body,
      headers: bulk,
    });
    assert.equal(refused.status, 503);
    const err = (await refused.json()).error;
    assert.equal(err.code, "unavailable");
    assert.deepEqual(err.details, { failed_shards: [0], indexed: 0 });
    assert.equal(live.writes, 2);
  } finally {
    // The dead replica's missed writes are queued for replay: stop replaying.
    for (const close of closers) await close();
    await live.close();
  }
});

Deno.test("with every replica down a search answers partial: true, not an error page", async () => {
  const { app } = createCoordinatorApp({
    shards: [[DEAD], [DEAD, DEAD]],
    searchTimeoutMs: 2000,
  }, auth.access);
  const res = await app.request("/v1/search?q=wing", {
    headers: auth.as("read"),
  });
  assert.equal(res.status, 200);
  const out = await res.json();
  assert.equal(out.partial, true);
  assert.deepEqual(out.failed_shards, [0, 1]);
  assert.deepEqual(out.hits, []);
  // Per-shard timings name no replica for a shard nobody answered.
  assert.deepEqual(
    out.shards.map((s: { shard: number; replica: number | null }) => [
      s.shard,
      s.replica,
    ]),
    [[0, null], [1, null]],
  );
});

Deno.test("a bulk body over the limit is refused with 413 before it is read", async () => {
  const { app } = createCoordinatorApp({ shards: [[DEAD]] }, auth.access);
  const res = await app.request("/v1/docs", {
    method: "POST",
    body: "x",
    headers: { ...bulk, "content-length": String(MAX_BULK_BYTES + 1) },
  });
  assert.equal(res.status, 413);
  assert.equal((await res.json()).error.code, "too_large");
});
