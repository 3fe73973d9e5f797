import assert from "node:assert/strict";
import { startChunkserver } from "./chunkserver.ts";
import { loadOrCreateSecrets } from "@strata/edge";
import { fetchAs } from "../_test_support.ts";

let api: typeof fetch = fetch;

const BLOCK = 64 * 1024;

async function post(url: string, body: unknown): Promise<Response> {
  return await api(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

Deno.test({
  name:
    "a secondary applies numbered mutations in the primary's order, whatever order they arrive in",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    // No master listens there: heartbeats fail quietly, which this test ignores.
    const cs = await startChunkserver({
      dataDir: dir,
      authDir: `${dir}/auth`,
      master: "http://127.0.0.1:9",
      chunkBytes: 4 * BLOCK,
      heartbeatMs: 60_000,
      scrubPauseMs: 0,
    });
    // The peer secret, as the primary and the master send it.
    api = fetchAs((await loadOrCreateSecrets(`${dir}/auth`)).peerSecret);
    try {
      assert.equal(
        (await post(`${cs.url}/v1/chunks/5/version`, {
          version: 1,
          create: true,
        })).status,
        200,
      );
      // Two overlapping mutations: the second must win, as numbered.
      for (const [id, fill] of [["aaaaaaaa1", 1], ["aaaaaaaa2", 2]] as const) {
        const r = await api(`${cs.url}/v1/push/${id}?chain=`, {
          method: "POST",
          body: new Uint8Array(BLOCK).fill(fill),
        });
        assert.equal(r.status, 200);
        await r.body?.cancel();
      }
      const second = post(`${cs.url}/v1/chunks/5/apply`, {
        version: 1,
        offset: 0,
        dataId: "aaaaaaaa2",
        seq: 2,
      });
      await new Promise((r) => setTimeout(r, 100));
      const first = post(`${cs.url}/v1/chunks/5/apply`, {
        version: 1,
        offset: 0,
        dataId: "aaaaaaaa1",
        seq: 1,
      });
      assert.equal((await first).status, 200);
      assert.equal((await second).status, 200);
      const bytes = new Uint8Array(
        await (await api(`${cs.url}/v1/chunks/5?version=1`)).arrayBuffer(),
      );
      assert.equal(bytes.length, BLOCK);
      assert.ok(bytes.every((b) => b === 2), "mutation 2 applied last");
      // A primary write without a lease is refused as no_lease.
      const pushed = await api(`${cs.url}/v1/push/aaaaaaaa3?chain=`, {
        method: "POST",
        body: new Uint8Array(10),
      });
      await pushed.body?.cancel();
      const noLease = await post(`${cs.url}/v1/chunks/5/write`, {
        dataId: "aaaaaaaa3",
        version: 1,
        offset: 0,
        secondaries: [],
      });
      assert.equal(noLease.status, 409);
      assert.equal((await noLease.json()).error.code, "no_lease");
    } finally {
      await cs.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
