/**
 * `send`'s classification of a refused connection now that bodies go with
 * a Content-Length (which Deno's fetch re-sends once on a kept-alive
 * connection that closes before the answer): a refusal proves nothing was
 * sent only when no earlier connection to that server could have carried
 * the request. Against a fake server that reads a write and dies.
 */
import assert from "node:assert/strict";
import { Http1Client } from "@strata/edge";
import { RefusalTracker, send, sendJson } from "./http_call.ts";
import { TablesClientError } from "./tables_client_error.ts";

const OPTS = { headers: {}, timeoutMs: 10_000, textBody: true };

/**
 * A raw HTTP/1.1 server: answers request 1 (kept alive), reads request 2
 * and then dies (closes the connection and its listener) without answering.
 */
function dyingServer() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const received: string[] = [];
  const conns: Deno.Conn[] = [];
  const done = (async () => {
    for await (const conn of listener) {
      conns.push(conn);
      const buf = new Uint8Array(64 * 1024);
      for (;;) {
        const n = await conn.read(buf).catch(() => null);
        if (!n) break;
        const text = new TextDecoder().decode(buf.subarray(0, n));
        // The rest of a request already counted (a chunked body's end).
        if (!/^[A-Z]+ \S+ HTTP\/1\.1\r\n/.test(text)) {
          received[received.length - 1] += text;
          continue;
        }
        received.push(text);
        if (received.length === 1) {
          await conn.write(new TextEncoder().encode(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n" +
              "content-length: 2\r\n\r\n{}",
          ));
        } else {
          listener.close();
          conn.close();
          return;
        }
      }
    }
  })().catch(() => {});
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    received,
    close: async () => {
      try {
        listener.close();
      } catch { /* already closed */ }
      for (const c of conns) {
        try {
          c.close();
        } catch { /* already closed */ }
      }
      await done;
    },
  };
}

async function failure(p: Promise<unknown>): Promise<TablesClientError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof TablesClientError, String(e));
    return e;
  }
  assert.fail("the call succeeded");
}

Deno.test("send: a write the server read before dying is lost (unknown), not unreachable; the next refusal is proof", async () => {
  const s = dyingServer();
  try {
    const url = `${s.url}/v1/tables/t/mutate`;
    const res = await send(url, { ...OPTS, body: { n: 1 } });
    assert.equal(await res.text(), "{}");
    // The body went in one piece, with its length (the servers' fast path).
    assert.match(s.received[0]!, /content-length: 7\r\n/i);
    assert.doesNotMatch(s.received[0]!, /transfer-encoding/i);
    // Request 2 is read, then the server dies: fetch re-sends it on a new
    // connection, which is refused. That refusal proves nothing.
    const lost = await failure(send(url, { ...OPTS, body: { n: 2 } }));
    assert.equal(lost.code, "lost", lost.message);
    assert.equal(s.received.length, 2);
    assert.match(s.received[1]!, /\{"n":2\}/);
    // A write started after the refusal, with no answer since: surely not sent.
    const refused = await failure(send(url, { ...OPTS, body: { n: 3 } }));
    assert.equal(refused.code, "unreachable", refused.message);
    assert.equal(s.received.length, 2);
  } finally {
    await s.close();
  }
});

Deno.test("send: a server never reached is unreachable (nothing was sent)", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const e = await failure(
    send(`http://127.0.0.1:${port}/v1/x`, { ...OPTS, body: {} }),
  );
  assert.equal(e.code, "unreachable");
});

Deno.test("RefusalTracker: proof only without an answer since an earlier refusal", () => {
  const t = new RefusalTracker();
  const first = t.start();
  assert.equal(
    t.refused("a", first),
    true,
    "never answered: no pooled connection",
  );
  t.answered("b");
  const [x, y] = [t.start(), t.start()];
  assert.equal(t.refused("b", x), false, "answered before: maybe a re-send");
  assert.equal(t.refused("b", y), false, "started before that refusal");
  const z = t.start();
  assert.equal(t.refused("b", z), true, "started after it, no answer since");
  t.answered("b");
  assert.equal(t.refused("b", t.start()), false, "answered again since");
});

Deno.test("send: other calls (master calls, a caller's own client) stream their body, which fetch never re-sends", async () => {
  const s = dyingServer();
  try {
    const url = `${s.url}/v1/tables`;
    const opts = { ...OPTS, textBody: false };
    const res = await send(url, { ...opts, body: { n: 1 } });
    assert.equal(await res.text(), "{}");
    assert.match(s.received[0]!, /transfer-encoding: chunked\r\n/i);
    const lost = await failure(send(url, { ...opts, body: { n: 2 } }));
    assert.equal(lost.code, "lost", lost.message);
    const refused = await failure(send(url, { ...opts, body: { n: 3 } }));
    assert.equal(refused.code, "unreachable", refused.message);
    assert.equal(s.received.length, 2);
  } finally {
    await s.close();
  }
});

Deno.test("sendJson with an Http1Client: a row write the server read and dropped is lost, never sent twice", async () => {
  // Answers request 1, drops the connection of request 2 unanswered, and
  // stays up: a client that re-sends (fetch on a kept-alive connection,
  // denoland/deno#35610) would have the write applied twice.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const writes: string[] = [];
  const done = (async () => {
    for await (const conn of listener) {
      (async () => {
        const buf = new Uint8Array(64 * 1024);
        for (;;) {
          const n = await conn.read(buf).catch(() => null);
          if (!n) break;
          writes.push(new TextDecoder().decode(buf.subarray(0, n)));
          if (writes.length === 2) {
            conn.close();
            break;
          }
          await conn.write(new TextEncoder().encode(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n" +
              'content-length: 13\r\n\r\n{"applied":1}',
          ));
        }
      })();
    }
  })().catch(() => {});
  const http1 = new Http1Client();
  const url = `http://127.0.0.1:${
    (listener.addr as Deno.NetAddr).port
  }/v1/tables/t/mutate`;
  try {
    const opts = { ...OPTS, http1 };
    assert.deepEqual(await sendJson(url, { ...opts, body: { n: 1 } }), {
      applied: 1,
    });
    const lost = await failure(sendJson(url, { ...opts, body: { n: 2 } }));
    assert.equal(lost.code, "lost", lost.message);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(
      writes.filter((w) => w.includes('{"n":2}')).length,
      1,
      "the write reached the server once",
    );
    assert.match(writes[0]!, /content-length: 7\r\n/i);
  } finally {
    http1.close();
    listener.close();
    await done;
  }
});

Deno.test("sendJson with an Http1Client: a server never reached is unreachable; an error answer keeps its code", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const http1 = new Http1Client();
  const s = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () =>
      Response.json({ error: { code: "not_serving", message: "ask" } }, {
        status: 409,
      }),
  );
  try {
    const e = await failure(
      sendJson(`http://127.0.0.1:${port}/v1/x`, {
        ...OPTS,
        http1,
        body: {},
      }),
    );
    assert.equal(e.code, "unreachable");
    const refused = await failure(
      sendJson(`http://127.0.0.1:${s.addr.port}/v1/x`, {
        ...OPTS,
        http1,
        body: {},
      }),
    );
    assert.equal(refused.code, "not_serving");
    assert.equal(refused.status, 409);
  } finally {
    http1.close();
    await s.shutdown();
  }
});
