/**
 * KvClient's retry rules against fake in-process nodes: a write whose
 * answer is lost is not re-sent (its outcome is unknown), while a refused
 * connection or a `no_leader` answer fails over to the next node; reads
 * still retry after a timeout.
 */
import assert from "node:assert/strict";
import { KvClient, KvClientError } from "./client.ts";

/** Client deadline; the slow fake node answers well after it. */
const TIMEOUT_MS = 400;
const SLOW_MS = 1500;

type Behaviour = "ok" | "slow" | "no_leader" | "reset" | "truncated";

/**
 * A fake node counting the requests it received. `ok` answers at once,
 * `slow` applies and answers after SLOW_MS (past the client's deadline),
 * `no_leader` answers 503 with a leader hint, `reset` reads the request
 * and closes the connection without answering, `truncated` sends the
 * answer's head and part of its body, then closes.
 */
function fakeNode(behaviour: Behaviour, leaderHttp = "") {
  const received: string[] = [];
  const answer = (method: string, path: string) => {
    received.push(`${method} ${path}`);
    if (method === "GET") {
      return {
        key: "k",
        value: btoa("v"),
        revision: 7,
        createRevision: 7,
        version: 1,
      };
    }
    return {
      revision: 7,
      deleted: true,
      succeeded: true,
      released: true,
      token: 7,
      id: 1,
    };
  };
  if (behaviour === "reset" || behaviour === "truncated") {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const conns: Deno.Conn[] = [];
    (async () => {
      for await (const conn of listener) {
        conns.push(conn);
        const buf = new Uint8Array(64 * 1024);
        const n = await conn.read(buf).catch(() => null);
        if (n) {
          const line = new TextDecoder().decode(buf.subarray(0, n)).split(
            "\r\n",
          )[0]!;
          const [method, path] = line.split(" ");
          received.push(`${method} ${path}`);
          if (behaviour === "truncated") {
            await conn.write(new TextEncoder().encode(
              "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n" +
                'content-length: 1000\r\n\r\n{"revision":',
            )).catch(() => {});
          }
        }
        conn.close();
      }
    })().catch(() => {});
    return {
      url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
      received,
      close: () => {
        listener.close();
        for (const c of conns) {
          try {
            c.close();
          } catch { /* already closed */ }
        }
        return Promise.resolve();
      },
    };
  }
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (req) => {
      const url = new URL(req.url);
      await req.text();
      if (behaviour === "no_leader") {
        received.push(`${req.method} ${url.pathname}`);
        return Response.json({
          error: {
            code: "no_leader",
            message: "no leader is known right now; retry shortly",
            leader: 2,
            leaderHttp,
          },
        }, { status: 503 });
      }
      const body = answer(req.method, url.pathname);
      if (behaviour === "slow") {
        await new Promise((r) => setTimeout(r, SLOW_MS));
      }
      return Response.json(body);
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    received,
    close: () => server.shutdown(),
  };
}

/** An address nothing listens on (connections to it are refused). */
function closedPort(): string {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return `http://127.0.0.1:${port}`;
}

/** Every mutating call, by name. */
const writes: Record<string, (kv: KvClient) => Promise<unknown>> = {
  put: (kv) => kv.put("k", "v"),
  delete: (kv) => kv.delete("k"),
  cas: (kv) => kv.cas("k", { value: null }, "v"),
  txn: (kv) => kv.txn({ compare: [], success: [], failure: [] }),
  lock: (kv) => kv.lock("l", 1),
  unlock: (kv) => kv.unlock("l", 1),
};

for (const failure of ["slow", "reset", "truncated"] as const) {
  Deno.test(`a write whose answer is lost (${failure}) is not re-sent: unknown_outcome`, async () => {
    for (const [name, call] of Object.entries(writes)) {
      const lost = fakeNode(failure);
      const good = fakeNode("ok");
      try {
        const kv = new KvClient([lost.url, good.url], {
          timeoutMs: TIMEOUT_MS,
          attempts: 6,
        });
        await assert.rejects(call(kv), (e) => {
          assert.ok(e instanceof KvClientError, `${name}: ${e}`);
          assert.equal(e.code, "unknown_outcome", `${name}: ${e.message}`);
          assert.match(e.message, /may or may not have been applied/);
          return true;
        });
        assert.equal(lost.received.length, 1, `${name} sent once`);
        assert.deepEqual(good.received, [], `${name} not re-sent elsewhere`);
      } finally {
        await lost.close();
        await good.close();
      }
    }
  });
}

Deno.test("a write fails over after a refused connection and no_leader", async () => {
  for (const [name, call] of Object.entries(writes)) {
    const noLeader = fakeNode("no_leader");
    const good = fakeNode("ok");
    try {
      const kv = new KvClient([closedPort(), noLeader.url, good.url], {
        timeoutMs: 5000,
        attempts: 6,
      });
      await call(kv);
      assert.equal(noLeader.received.length, 1, `${name} reached no_leader`);
      assert.equal(good.received.length, 1, `${name} applied once`);
    } finally {
      await noLeader.close();
      await good.close();
    }
  }
});

Deno.test("no_leader's leader hint sends the retry straight to the leader", async () => {
  const good = fakeNode("ok");
  const other = fakeNode("ok");
  // The hint as nodes give it: host:port, without the scheme.
  const noLeader = fakeNode("no_leader", good.url.replace("http://", ""));
  try {
    const kv = new KvClient([noLeader.url, other.url, good.url], {
      timeoutMs: 5000,
    });
    assert.equal(await kv.put("k", "v"), 7);
    assert.equal(noLeader.received.length, 1);
    assert.deepEqual(other.received, []);
    assert.equal(good.received.length, 1);
  } finally {
    await noLeader.close();
    await other.close();
    await good.close();
  }
});

Deno.test("reads still retry after a timeout", async () => {
  const slow = fakeNode("slow");
  const good = fakeNode("ok");
  try {
    const kv = new KvClient([slow.url, good.url], { timeoutMs: TIMEOUT_MS });
    const e = await kv.get("k");
    assert.equal(new TextDecoder().decode(e!.value), "v");
    assert.equal(slow.received.length, 1);
    assert.equal(good.received.length, 1);
  } finally {
    await slow.close();
    await good.close();
  }
});

Deno.test("a refused connection alone exhausts the attempts as unreachable", async () => {
  const kv = new KvClient([closedPort()], { timeoutMs: 2000, attempts: 2 });
  await assert.rejects(kv.put("k", "v"), (e) => {
    assert.ok(e instanceof KvClientError);
    assert.equal(e.code, "unreachable", e.message);
    return true;
  });
});
