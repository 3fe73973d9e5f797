import assert from "node:assert/strict";
import { createCoordinatorApp } from "./coordinator_app.ts";
import { createShardApp } from "./shard_app.ts";
import { ShardStore } from "./shard_store.ts";
import { testAccess } from "./_test_access.ts";

/**
 * Sends raw bytes (then half-closes, so a short body is truncated for
 * good) and returns the status and body of the answer.
 */
async function raw(
  port: number,
  text: string,
  halfClose = true,
): Promise<{ status: number; body: string }> {
  const c = await Deno.connect({ hostname: "127.0.0.1", port });
  const timer = setTimeout(() => c.close(), 10_000);
  let out = "";
  try {
    await c.write(new TextEncoder().encode(text));
    // (Deno.serve drops a slow answer to a client that half-closed.)
    if (halfClose) await c.closeWrite();
    const buf = new Uint8Array(65536);
    for (;;) {
      const n = await c.read(buf);
      if (n === null) break;
      out += new TextDecoder().decode(buf.subarray(0, n));
    }
  } finally {
    clearTimeout(timer);
    try {
      c.close();
    } catch { /* closed by the timer */ }
  }
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(out)?.[1] ?? "0");
  return { status, body: out.slice(out.indexOf("\r\n\r\n") + 4) };
}

const auth = await testAccess();

/** A request head with the peer secret, which every route takes. */
const head = (method: string, path: string, extra = "") =>
  `${method} ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: ${
    auth.as("peer").authorization
  }\r\nconnection: close\r\n${extra}\r\n`;

Deno.test("bad input on every route is a 4xx JSON error: malformed percent-encoding, truncated bodies, wrong content types", async () => {
  const dir = await Deno.makeTempDir();
  const store = await ShardStore.open(dir, { sync: "never" });
  const shard = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    createShardApp(store, { shard: 0, replica: 0 }, auth.access).fetch,
  );
  const coord = createCoordinatorApp({
    shards: [[`http://127.0.0.1:${shard.addr.port}`]],
  }, auth.access);
  const front = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    coord.app.fetch,
  );
  const C = front.addr.port;
  const S = shard.addr.port;
  const json = "content-type: application/json\r\n";
  const cases: Array<[string, number, string, number, RegExp]> = [
    // [what, port, request, status, error code]
    ["search q", C, head("GET", "/v1/search?q=%E0%A4%A"), 400, /bad_request/],
    [
      "search size",
      C,
      head("GET", "/v1/search?q=a&size=%ZZ"),
      400,
      /bad_request/,
    ],
    ["delete id", C, head("DELETE", "/v1/docs/%E0%A4%A"), 400, /bad_request/],
    ["get id", C, head("GET", "/v1/docs/%E0%A4%A"), 400, /bad_request/],
    ["get bad id", C, head("GET", "/v1/docs/a%20b"), 400, /bad_request/],
    [
      "internal doc id",
      S,
      head("GET", "/internal/doc/%E0%A4%A"),
      400,
      /bad_request/,
    ],
    ["user id", C, head("GET", "/v1/users/%E0%A4%A/docs"), 400, /bad_request/],
    [
      "user size",
      C,
      head("GET", "/v1/users/1/docs?size=%E0"),
      400,
      /bad_request/,
    ],
    ["stats", C, head("GET", "/v1/stats?x=%E0"), 400, /bad_request/],
    ["metrics", C, head("GET", "/metrics?x=%E0"), 400, /bad_request/],
    [
      "bulk truncated",
      C,
      head("POST", "/v1/docs", "content-length: 100\r\n") + '{"id":"a"',
      400,
      /bad_request/,
    ],
    [
      "bulk multipart",
      C,
      head(
        "POST",
        "/v1/docs",
        "content-type: multipart/form-data; boundary=x\r\ncontent-length: 2\r\n",
      ) + "{}",
      415,
      /unsupported_media_type/,
    ],
    [
      "bulk image",
      C,
      head(
        "POST",
        "/v1/docs",
        "content-type: image/png\r\ncontent-length: 2\r\n",
      ) + "{}",
      415,
      /unsupported_media_type/,
    ],
    [
      "bulk bad utf-8",
      C,
      head("POST", "/v1/docs", "content-length: 3\r\n") + "\xff\xfe}",
      400,
      /bad_document/,
    ],
    [
      "internal search truncated",
      S,
      head("POST", "/internal/search", `${json}content-length: 100\r\n`) +
      '{"query"',
      400,
      /bad_request/,
    ],
    [
      "internal write truncated",
      S,
      head("POST", "/internal/write", `${json}content-length: 50\r\n`) +
      '{"add":[',
      400,
      /bad_request/,
    ],
    [
      "internal build truncated",
      S,
      head("POST", "/internal/build", `${json}content-length: 50\r\n`) +
      '{"add":[',
      400,
      /bad_request/,
    ],
    [
      "internal apply not a record",
      S,
      head(
        "POST",
        "/internal/apply",
        "content-type: application/octet-stream\r\ncontent-length: 3\r\n",
      ) + "abc",
      400,
      /bad_request/,
    ],
    [
      "internal apply as json",
      S,
      head("POST", "/internal/apply", `${json}content-length: 2\r\n`) + "{}",
      415,
      /unsupported_media_type/,
    ],
    [
      "internal stats truncated",
      S,
      head("POST", "/internal/stats", `${json}content-length: 50\r\n`) + "{",
      400,
      /bad_request/,
    ],
    [
      "internal write html",
      S,
      head(
        "POST",
        "/internal/write",
        "content-type: text/html\r\ncontent-length: 2\r\n",
      ) + "{}",
      415,
      /unsupported_media_type/,
    ],
    [
      "internal search form",
      S,
      head(
        "POST",
        "/internal/search",
        "content-type: application/x-www-form-urlencoded\r\ncontent-length: 2\r\n",
      ) + "{}",
      415,
      /unsupported_media_type/,
    ],
    [
      "internal stats array",
      S,
      head("POST", "/internal/stats", `${json}content-length: 2\r\n`) + "[]",
      400,
      /bad_request/,
    ],
    [
      "internal bad json",
      S,
      head("POST", "/internal/write", `${json}content-length: 3\r\n`) + "{{}",
      400,
      /bad_request/,
    ],
    [
      "internal user id",
      S,
      head("GET", "/internal/users/%E0%A4%A"),
      400,
      /bad_request/,
    ],
    [
      "internal user size",
      S,
      head("GET", "/internal/users/1?size=%E0"),
      400,
      /bad_request/,
    ],
    [
      "internal describe",
      S,
      head("GET", "/internal/describe?x=%ZZ"),
      400,
      /bad_request/,
    ],
    ["health", S, head("GET", "/health?x=%"), 400, /bad_request/],
  ];
  try {
    for (const [what, port, req, status, code] of cases) {
      const r = await raw(port, req);
      assert.equal(r.status, status, `${what}: ${r.body.slice(0, 200)}`);
      const body = JSON.parse(r.body);
      assert.match(body.error.code, code, what);
      assert.equal(typeof body.error.message, "string", what);
      assert.ok(!/\n\s+at /.test(r.body), `${what}: no stack trace`);
    }
    // The accepted types still work, and both services keep serving.
    const doc = '{"id":"x1","user_id":1,"name":"h","body":"café au lait"}';
    const ok = await raw(
      C,
      head(
        "POST",
        "/v1/docs",
        `content-type: application/x-ndjson\r\ncontent-length: ${
          new TextEncoder().encode(doc).length
        }\r\n`,
      ) + doc,
      false,
    );
    assert.equal(ok.status, 200, ok.body);
    const search = await raw(
      C,
      head("GET", "/v1/search?q=caf%C3%A9"),
      false,
    );
    assert.equal(search.status, 200, search.body);
  } finally {
    await coord.close();
    await front.shutdown();
    await shard.shutdown();
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
