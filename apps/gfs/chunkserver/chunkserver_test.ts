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

Deno.test({
  name:
    "a new chunk version ends a record-append batch stuck forwarding to a silent secondary, so the version change is not held up",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    // The secondary accepts connections and never answers (partitioned).
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const conns: Deno.Conn[] = [];
    (async () => {
      try {
        for await (const c of listener) conns.push(c);
      } catch { /* closed */ }
    })();
    const silent = `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`;
    // A master that registers it as a peer.
    const ac = new AbortController();
    const master = Deno.serve(
      { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
      () => Response.json({ delete: [], leases: [], peers: [silent] }),
    );
    const cs = await startChunkserver({
      dataDir: dir,
      authDir: `${dir}/auth`,
      master: `http://127.0.0.1:${master.addr.port}`,
      chunkBytes: 4 * BLOCK,
      heartbeatMs: 100,
      scrubPauseMs: 0,
    });
    // The master's calls carry the peer secret; the appending client a write token.
    const secrets = await loadOrCreateSecrets(`${dir}/auth`);
    api = fetchAs(secrets.peerSecret);
    try {
      const v1 = await post(`${cs.url}/v1/chunks/7/version`, {
        version: 1,
        create: true,
        leaseUntil: Date.now() + 60_000,
      });
      assert.equal(v1.status, 200);
      await v1.body?.cancel();
      const append = fetchAs(secrets.tokens.write)(
        `${cs.url}/v1/chunks/7/records?version=1&secondaries=${
          encodeURIComponent(silent)
        }`,
        {
          method: "POST",
          headers: { "content-type": "application/octet-stream" },
          body: new Uint8Array(100).fill(7),
        },
      );
      await new Promise((r) => setTimeout(r, 500));
      // The master's new lease: version 2 (its RPC times out after 10 s).
      const started = performance.now();
      const v2 = await post(`${cs.url}/v1/chunks/7/version`, {
        version: 2,
        create: false,
      });
      const tookMs = performance.now() - started;
      assert.equal(v2.status, 200);
      await v2.body?.cancel();
      assert.ok(tookMs < 5000, `the version change took ${tookMs} ms`);
      // The batch was not acknowledged.
      const r = await append;
      assert.notEqual(r.status, 200);
      await r.body?.cancel();
    } finally {
      await cs.close();
      listener.close();
      for (const c of conns) c.close();
      ac.abort();
      await master.finished;
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "a pushed piece is pipelined: the next server in the chain gets its first bytes before the pusher has sent the rest",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    const ac = new AbortController();
    // The next hop: counts what arrives and notes when the first bytes came.
    let firstBytes!: () => void;
    const nextGotBytes = new Promise<void>((r) => firstBytes = r);
    let nextReceived = 0;
    const next = Deno.serve(
      { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
      async (req): Promise<Response> => {
        for await (const part of req.body!) {
          nextReceived += part.length;
          firstBytes();
        }
        return Response.json({ received: [nextUrl] });
      },
    );
    const nextUrl: string = `http://127.0.0.1:${next.addr.port}`;
    // A master that registers the next hop as a chunkserver.
    const master = Deno.serve(
      { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
      (req) =>
        new URL(req.url).pathname === "/v1/chunkservers"
          ? Response.json({ chunkservers: [{ url: nextUrl }] })
          : Response.json({ delete: [], leases: [], peers: [nextUrl] }),
    );
    const cs = await startChunkserver({
      dataDir: dir,
      authDir: `${dir}/auth`,
      master: `http://127.0.0.1:${master.addr.port}`,
      chunkBytes: 4 * BLOCK,
      heartbeatMs: 60_000,
      scrubPauseMs: 0,
    });
    const secrets = await loadOrCreateSecrets(`${dir}/auth`);
    try {
      let send!: ReadableStreamDefaultController<Uint8Array>;
      const body = new ReadableStream<Uint8Array>({
        start(ctl) {
          send = ctl;
        },
      });
      const pushed = fetchAs(secrets.tokens.write)(
        `${cs.url}/v1/push/pipelined1?chain=${encodeURIComponent(nextUrl)}`,
        {
          method: "POST",
          headers: { "content-type": "application/octet-stream" },
          body,
          duplex: "half",
        } as RequestInit,
      );
      send.enqueue(new Uint8Array(BLOCK).fill(1));
      // A chunkserver that buffered the piece would forward nothing yet.
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        await Promise.race([
          nextGotBytes,
          new Promise((_, reject) =>
            timer = setTimeout(
              () => reject(new Error("the next hop got nothing in 10 s")),
              10_000,
            )
          ),
        ]);
      } catch (e) {
        // End the push so the chunkserver can close.
        send.error(e);
        await pushed.then((r) => r.body?.cancel(), () => {});
        throw e;
      } finally {
        clearTimeout(timer);
      }
      send.enqueue(new Uint8Array(2 * BLOCK).fill(2));
      send.close();
      const res = await pushed;
      assert.equal(res.status, 200);
      assert.deepEqual((await res.json()).received, [cs.url, nextUrl]);
      assert.equal(nextReceived, 3 * BLOCK, "the whole piece went on");
    } finally {
      await cs.close();
      ac.abort();
      await next.finished;
      await master.finished;
      await Deno.remove(dir, { recursive: true });
    }
  },
});
