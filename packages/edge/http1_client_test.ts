/**
 * `Http1Client` against real sockets: answers of each framing, kept-alive
 * connections, and the failures a retrying client relies on (never a
 * re-send; "not sent" only when the connection could not be made).
 */
import assert from "node:assert/strict";
import { EdgeError } from "./edge_error.ts";
import { Http1Client } from "./http1_client.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * A raw HTTP/1.1 server: `answer(request, index)` returns the bytes to
 * write back (or null: close the connection without answering). Counts
 * connections and requests (one read is taken as one request).
 */
function rawServer(answer: (req: string, n: number) => string | null) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const requests: string[] = [];
  const conns: Deno.Conn[] = [];
  const done = (async () => {
    for await (const conn of listener) {
      conns.push(conn);
      (async () => {
        const buf = new Uint8Array(64 * 1024);
        for (;;) {
          const n = await conn.read(buf).catch(() => null);
          if (!n) break;
          const req = dec.decode(buf.subarray(0, n));
          requests.push(req);
          const out = answer(req, requests.length);
          if (out === null) {
            conn.close();
            break;
          }
          await conn.write(enc.encode(out)).catch(() => {});
        }
      })();
    }
  })().catch(() => {});
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    requests,
    conns,
    close: async () => {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed already */ }
      }
      await done;
    },
  };
}

const ok = (body: string, extra = "") =>
  `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n${extra}content-length: ${
    enc.encode(body).length
  }\r\n\r\n${body}`;

async function failure(p: Promise<unknown>): Promise<EdgeError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof EdgeError, String(e));
    return e;
  }
  assert.fail("the request succeeded");
}

const req = (body?: string) => ({
  method: "POST",
  headers: { authorization: "Bearer t", "content-type": "application/json" },
  ...(body === undefined ? {} : { body }),
  timeoutMs: 5000,
});

Deno.test("Http1Client sends head and body with a length in one piece and keeps the connection", async () => {
  const s = rawServer(() => ok('{"applied":1}'));
  const c = new Http1Client();
  try {
    for (const body of ['{"n":1}', '{"é":2}']) {
      const r = await c.request(`${s.url}/v1/x?y=1`, req(body));
      assert.equal(r.status, 200);
      assert.equal(dec.decode(r.body), '{"applied":1}');
      assert.equal(r.headers.get("content-type"), "application/json");
    }
    assert.match(s.requests[0]!, /^POST \/v1\/x\?y=1 HTTP\/1\.1\r\n/);
    assert.match(s.requests[0]!, /\r\nauthorization: Bearer t\r\n/);
    assert.ok(
      s.requests[0]!.includes(`\r\nhost: ${new URL(s.url).host}\r\n`),
      "Host names the port",
    );
    assert.match(s.requests[0]!, /\r\ncontent-length: 7\r\n\r\n\{"n":1\}$/);
    // UTF-8 bytes counted, not UTF-16 units.
    assert.match(s.requests[1]!, /\r\ncontent-length: 8\r\n/);
    assert.equal(s.conns.length, 1, "the second request reused the connection");
  } finally {
    c.close();
    await s.close();
  }
});

Deno.test("Http1Client reads chunked and close-delimited answers and an error status", async () => {
  const s = rawServer((_, n) =>
    n === 1
      ? "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" +
        '3\r\n{"a\r\n6;x=y\r\n":12}\n\r\n0\r\n\r\n'
      : n === 2
      ? ok('{"error":{"code":"not_serving"}}').replace("200 OK", "409 Conflict")
      : "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end"
  );
  const c = new Http1Client();
  try {
    const a = await c.request(`${s.url}/a`, req("{}"));
    assert.equal(dec.decode(a.body), '{"a":12}\n');
    const b = await c.request(`${s.url}/b`, req("{}"));
    assert.equal(b.status, 409);
    assert.match(dec.decode(b.body), /not_serving/);
    // Ends with the connection (the server closes after writing).
    const end = c.request(`${s.url}/c`, req("{}"));
    await new Promise((r) => setTimeout(r, 50));
    for (const conn of s.conns) conn.close();
    assert.equal(dec.decode((await end).body), "until the end");
  } finally {
    c.close();
    await s.close();
  }
});

Deno.test("Http1Client never re-sends: a request the server read before dying fails as sent (fetch would send it again)", async () => {
  const s = rawServer((_, n) => n === 1 ? ok("{}") : null);
  const c = new Http1Client();
  try {
    await c.request(`${s.url}/w`, req('{"n":1}'));
    const e = await failure(c.request(`${s.url}/w`, req('{"n":2}')));
    assert.equal(e.code, "unavailable");
    assert.equal(e.details?.sent, true, e.message);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(s.requests.length, 2, "one copy of each request, no re-send");
  } finally {
    c.close();
    await s.close();
  }
});

Deno.test("Http1Client: a refused connection is 'not sent'; a closed idle connection is noticed and replaced", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const c = new Http1Client();
  const s = rawServer(() => ok("{}"));
  try {
    const e = await failure(c.request(`http://127.0.0.1:${port}/x`, req("{}")));
    assert.equal(e.code, "unavailable");
    assert.equal(e.details?.sent, false, e.message);
    await c.request(`${s.url}/x`, req("{}"));
    // The server closes the kept-alive connection while it is idle.
    s.conns[0]!.close();
    await new Promise((r) => setTimeout(r, 50));
    const r = await c.request(`${s.url}/x`, req("{}"));
    assert.equal(r.status, 200);
    assert.equal(s.conns.length, 2, "a new connection, not a failure");
  } finally {
    c.close();
    await s.close();
  }
});

Deno.test("Http1Client: no answer in time is a timeout (sent); a header with CR/LF is refused unsent", async () => {
  const s = rawServer(() => "");
  const c = new Http1Client();
  try {
    const t0 = performance.now();
    const e = await failure(
      c.request(`${s.url}/slow`, { ...req("{}"), timeoutMs: 150 }),
    );
    assert.equal(e.code, "timeout");
    assert.equal(e.details?.sent, true);
    assert.ok(performance.now() - t0 < 1000);
    const bad = await failure(
      c.request(`${s.url}/x`, {
        ...req("{}"),
        headers: { "x-a": "1\r\nx-b: 2" },
      }),
    );
    assert.equal(bad.code, "bad_request");
    assert.equal(s.requests.length, 1);
  } finally {
    c.close();
    await s.close();
  }
});
