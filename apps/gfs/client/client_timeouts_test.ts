// The client's own timeouts (pushTimeoutMs, readTimeoutMs) bound how long
// a replica that never answers (a silent partition) stalls an upload or a
// read: against a socket that accepts and never replies, an upload fails
// within its retries of the push timeout instead of 120 s per attempt, and
// a read moves on to the next replica after the read timeout.
import assert from "node:assert/strict";
import type { z } from "zod";
import { GfsClient, type MasterCaller } from "./client.ts";
import { isGfsError } from "../shared/gfs_error.ts";
import {
  unconnectablePort,
  within,
} from "../../../packages/transport/_test_net.ts";

/** A TCP server that accepts connections and never answers. */
function silentServer(): { url: string; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  (async () => {
    try {
      for await (const c of listener) conns.push(c);
    } catch { /* closed */ }
  })();
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    close() {
      listener.close();
      for (const c of conns) c.close();
    },
  };
}

/**
 * A chunkserver whose `/v1/health` advertises `port` as its data and bulk
 * ports; every other route answers 503.
 */
function advertising(port: number): { url: string; close(): Promise<void> } {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) =>
      new URL(req.url).pathname === "/v1/health"
        ? Response.json({ dataPort: port, bulkPort: port })
        : new Response("no", { status: 503 }),
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    close: () => server.shutdown(),
  };
}

/**
 * A master that answers from `answers` by RPC path, in process; each call's
 * path and body go to `calls` when given.
 */
function fakeMaster(
  answers: Record<string, unknown>,
  calls?: { path: string; body: unknown }[],
): MasterCaller {
  return {
    current: "http://master.invalid",
    call<S extends z.ZodType>(
      pathAndQuery: string,
      schema: S,
      options?: { body?: unknown },
    ) {
      const key = pathAndQuery.split("?")[0]!;
      calls?.push({ path: key, body: options?.body });
      if (!(key in answers)) throw new Error(`unexpected call ${key}`);
      return Promise.resolve(schema.parse(answers[key]) as z.infer<S>);
    },
  };
}

Deno.test("an upload to a silent chunkserver fails after the client's push timeout, not 120 s", async () => {
  const silent = silentServer();
  try {
    const target = {
      handle: 1,
      version: 1,
      primary: silent.url,
      secondaries: [],
      chunkBytes: 1024,
    };
    const client = new GfsClient(
      "http://master.invalid",
      {
        pushTimeoutMs: 300,
      },
      fakeMaster({
        "/v1/rpc/create": {
          fileId: 1,
          chunkBytes: 1024,
          replication: 1,
          first: target,
        },
        "/v1/rpc/allocate": target,
        "/v1/rpc/abandon": { ok: true },
      }),
    );
    const started = performance.now();
    await assert.rejects(
      client.upload("/f", new Uint8Array(100)),
      (e) => isGfsError(e, "unavailable"),
    );
    const took = performance.now() - started;
    // 5 attempts of 300 ms each plus 2 s of backoff between them.
    assert.ok(took >= 5 * 300, `failed after ${took.toFixed(0)} ms`);
    assert.ok(took < 20_000, `failed after ${took.toFixed(0)} ms`);
  } finally {
    silent.close();
  }
});

Deno.test("a read skips a silent replica after the client's read timeout", async () => {
  const silent = silentServer();
  const bytes = new Uint8Array([1, 2, 3, 4, 5]);
  const good = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response(bytes),
  );
  try {
    const client = new GfsClient(
      "http://master.invalid",
      {
        readTimeoutMs: 300,
      },
      fakeMaster({
        "/v1/rpc/locate": {
          fileId: 1,
          length: 5,
          mode: "upload",
          chunkBytes: 1024,
          chunks: [{
            handle: 1,
            version: 1,
            length: 5,
            replicas: [silent.url, `http://127.0.0.1:${good.addr.port}`],
          }],
        },
      }),
    );
    const started = performance.now();
    assert.deepEqual(await client.readAll("/f"), bytes);
    const took = performance.now() - started;
    assert.ok(took >= 300 && took < 10_000, `read took ${took.toFixed(0)} ms`);
  } finally {
    silent.close();
    await good.shutdown();
  }
});

// Found by gfs_partition_test.ts (uploads stalled for more than 40 s while a
// chunkserver was cut off): the bulk and data ports' dials had no deadline,
// and every exchange's deadline began once the socket was open.
Deno.test({
  name:
    "an upload whose primary's bulk port cannot be connected to (SYNs unanswered) fails within its push timeout's retries, not after the kernel's 2 min of SYN retries, and each retry asks the master to place the chunk away from it",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dead = await unconnectablePort();
    const cs = advertising(dead.port);
    try {
      const target = {
        handle: 1,
        version: 1,
        primary: cs.url,
        secondaries: [],
        chunkBytes: 1024,
      };
      const calls: { path: string; body: unknown }[] = [];
      const client = new GfsClient(
        "http://master.invalid",
        { pushTimeoutMs: 300 },
        fakeMaster({
          "/v1/rpc/create": {
            fileId: 1,
            chunkBytes: 1024,
            replication: 1,
            first: target,
          },
          "/v1/rpc/allocate": target,
          "/v1/rpc/abandon": { ok: true },
        }, calls),
      );
      const started = performance.now();
      await within(
        assert.rejects(
          client.upload("/f", new Uint8Array(100)),
          (e) =>
            isGfsError(e, "unavailable") &&
            /not connected within/.test(e.message),
        ),
        15_000,
        "the upload",
      );
      const took = performance.now() - started;
      // 5 dials of 300 ms each plus 2 s of backoff between them.
      assert.ok(took < 12_000, `failed after ${took.toFixed(0)} ms`);
      // Every retry names the server it failed through (this master places
      // it there anyway: the only one it has).
      const allocates = calls.filter((c) => c.path === "/v1/rpc/allocate");
      assert.equal(allocates.length, 4);
      for (const a of allocates) {
        assert.deepEqual((a.body as { avoid?: string[] }).avoid, [cs.url]);
      }
    } finally {
      dead.close();
      await cs.close();
    }
  },
});

Deno.test({
  name:
    "a read skips a replica whose bulk port cannot be connected to after the client's read timeout",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dead = await unconnectablePort();
    const cs = advertising(dead.port);
    const bytes = new Uint8Array([1, 2, 3, 4, 5]);
    const good = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      (req) =>
        new URL(req.url).pathname === "/v1/health"
          ? new Response("none", { status: 404 })
          : new Response(bytes),
    );
    try {
      const client = new GfsClient(
        "http://master.invalid",
        { readTimeoutMs: 300 },
        fakeMaster({
          "/v1/rpc/locate": {
            fileId: 1,
            length: 5,
            mode: "upload",
            chunkBytes: 1024,
            chunks: [{
              handle: 1,
              version: 1,
              length: 5,
              replicas: [cs.url, `http://127.0.0.1:${good.addr.port}`],
            }],
          },
        }),
      );
      const started = performance.now();
      assert.deepEqual(
        await within(client.readAll("/f"), 15_000, "the read"),
        bytes,
      );
      const took = performance.now() - started;
      assert.ok(took < 10_000, `read took ${took.toFixed(0)} ms`);
    } finally {
      dead.close();
      await cs.close();
      await good.shutdown();
    }
  },
});

Deno.test({
  name:
    "an append whose primary's data port cannot be connected to is retried and fails within its append timeouts",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dead = await unconnectablePort();
    const cs = advertising(dead.port);
    try {
      const target = {
        handle: 1,
        version: 1,
        primary: cs.url,
        secondaries: [],
        chunkBytes: 1 << 20,
      };
      const client = new GfsClient(
        "http://master.invalid",
        { appendTimeoutMs: 300, retries: 3 },
        fakeMaster({ "/v1/rpc/append-target": target }),
      );
      const started = performance.now();
      await within(
        assert.rejects(
          client.append("/log", new Uint8Array(10)),
          (e) => isGfsError(e, "unavailable"),
        ),
        15_000,
        "the append",
      );
      const took = performance.now() - started;
      assert.ok(took < 10_000, `failed after ${took.toFixed(0)} ms`);
    } finally {
      dead.close();
      await cs.close();
    }
  },
});
