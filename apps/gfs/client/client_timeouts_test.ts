// The client's own timeouts (pushTimeoutMs, readTimeoutMs) bound how long
// a replica that never answers (a silent partition) stalls an upload or a
// read: against a socket that accepts and never replies, an upload fails
// within its retries of the push timeout instead of 120 s per attempt, and
// a read moves on to the next replica after the read timeout.
import assert from "node:assert/strict";
import type { z } from "zod";
import { GfsClient, type MasterCaller } from "./client.ts";
import { isGfsError } from "../shared/gfs_error.ts";

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

/** A master that answers from `answers` by RPC path, in process. */
function fakeMaster(answers: Record<string, unknown>): MasterCaller {
  return {
    current: "http://master.invalid",
    call<S extends z.ZodType>(pathAndQuery: string, schema: S) {
      const key = pathAndQuery.split("?")[0]!;
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
