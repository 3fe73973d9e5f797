import assert from "node:assert/strict";
import { Hono } from "hono";
import { z } from "zod";
import { installErrorHandlers } from "./error_handler.ts";
import {
  NDJSON_CONTENT_TYPES,
  readJson,
  readNdjson,
  readQuery,
  strictUrlEncoding,
} from "./request_input.ts";

function app(logged: string[] = []) {
  const a = new Hono();
  a.post(
    "/echo",
    async (c) =>
      c.json(await readJson(c, z.object({ n: z.number() }), { maxBytes: 64 })),
  );
  a.post(
    "/opt",
    async (c) =>
      c.json(
        await readJson(c, z.object({ n: z.number().default(1) }), {
          empty: {},
        }),
      ),
  );
  a.get(
    "/q",
    (c) =>
      c.json(
        readQuery(
          c,
          z.object({ n: z.coerce.number().int(), s: z.string().default("") }),
        ),
      ),
  );
  a.get("/boom", () => {
    throw new Error("secret path /etc/x token=abc");
  });
  installErrorHandlers(a, { name: "test", log: (l) => logged.push(l) });
  return a;
}

async function status(
  res: Response | Promise<Response>,
): Promise<[number, string | undefined]> {
  const r = await res;
  const body = await r.json() as { error?: { code: string } };
  return [r.status, body.error?.code];
}

const json = { "content-type": "application/json" };

Deno.test("JSON bodies: only application/json, valid JSON, within the limit, matching the schema", async () => {
  const a = app();
  assert.equal(
    (await a.request("/echo", {
      method: "POST",
      headers: json,
      body: '{"n":1}',
    })).status,
    200,
  );
  assert.deepEqual(
    await status(
      a.request("/echo", {
        method: "POST",
        headers: { "content-type": "text/plain" },
        body: '{"n":1}',
      }),
    ),
    [415, "unsupported_media_type"],
  );
  assert.deepEqual(
    await status(a.request("/echo", { method: "POST", body: '{"n":1}' })),
    [415, "unsupported_media_type"],
  );
  assert.deepEqual(
    await status(
      a.request("/echo", { method: "POST", headers: json, body: '{"n":' }),
    ),
    [400, "bad_request"],
  );
  assert.deepEqual(
    await status(
      a.request("/echo", { method: "POST", headers: json, body: '{"n":"x"}' }),
    ),
    [400, "bad_request"],
  );
  assert.deepEqual(
    await status(
      a.request("/echo", {
        method: "POST",
        headers: json,
        body: `{"n":1,"pad":"${"x".repeat(100)}"}`,
      }),
    ),
    [413, "too_large"],
  );
});

Deno.test("an optional body may be absent, but not sent as text/plain", async () => {
  const a = app();
  assert.equal((await a.request("/opt", { method: "POST" })).status, 200);
  assert.deepEqual(
    await status(
      a.request("/opt", {
        method: "POST",
        headers: { "content-type": "text/plain" },
      }),
    ),
    [415, "unsupported_media_type"],
  );
});

Deno.test("queries are validated and strictly decoded", async () => {
  const a = app();
  const ok = await a.request("/q?n=3&s=a%20b+c");
  assert.deepEqual(await ok.json(), { n: 3, s: "a b c" });
  assert.deepEqual(await status(a.request("/q?n=x")), [400, "bad_request"]);
  assert.deepEqual(await status(a.request("/q?n=1&s=%zz")), [
    400,
    "bad_request",
  ]);
});

Deno.test("an unexpected error is a generic 500: its text is logged, never sent", async () => {
  const logged: string[] = [];
  const res = await app(logged).request("/boom");
  assert.equal(res.status, 500);
  const text = await res.text();
  assert.doesNotMatch(text, /secret|etc|token/);
  assert.equal(logged.length, 1);
  assert.match(logged[0]!, /GET \/boom/);
});

Deno.test("a body cut short by the client is a 400 and the server keeps serving", async () => {
  const a = app();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: () => {},
  }, a.fetch);
  try {
    const port = server.addr.port;
    // Declare 50 bytes, send 10, close the write side.
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(new TextEncoder().encode(
      `POST /echo HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 50\r\n\r\n{"n":12345`,
    ));
    await conn.closeWrite();
    const buf = new Uint8Array(4096);
    let text = "";
    const until = performance.now() + 10_000;
    while (performance.now() < until) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    conn.close();
    assert.match(text, /^HTTP\/1\.1 400/);
    assert.match(text, /ended before it was complete/);
    const res = await fetch(`http://127.0.0.1:${port}/echo`, {
      method: "POST",
      headers: json,
      body: '{"n":2}',
    });
    assert.deepEqual(await res.json(), { n: 2 });
  } finally {
    await server.shutdown();
  }
});

Deno.test("NDJSON bodies: one value per line, all or nothing, bad lines named", async () => {
  const a = new Hono();
  a.use("*", strictUrlEncoding());
  a.post("/bulk", async (c) =>
    c.json(
      await readNdjson(c, z.object({ n: z.number() }), {
        maxBytes: 64,
        contentTypes: [...NDJSON_CONTENT_TYPES, "text/plain"],
        invalidCode: "bad_document",
      }),
    ));
  a.post(
    "/strict",
    async (c) => c.json(await readNdjson(c, z.object({ n: z.number() }))),
  );
  a.get("/x/:id", (c) => c.json({ id: c.req.param("id") }));
  installErrorHandlers(a, { name: "test" });
  const nd = { "content-type": "application/x-ndjson" };
  const post = (path: string, body: BodyInit, headers?: HeadersInit) =>
    a.request(path, { method: "POST", body, headers });
  const ok = await post("/bulk", '{"n":1}\n\n {"n":2} \n', nd);
  assert.equal(ok.status, 200);
  assert.deepEqual(await ok.json(), [{ n: 1 }, { n: 2 }]);
  // fetch sends a string as text/plain, accepted where listed.
  assert.deepEqual(await (await post("/bulk", '{"n":3}')).json(), [{ n: 3 }]);
  const bad = await post("/bulk", '{"n":1}\n{nope\n{"n":"x"}\n', nd);
  assert.equal(bad.status, 400);
  const err = (await bad.json()).error;
  assert.equal(err.code, "bad_document");
  assert.match(err.message, /^2 bad line\(s\).*line 2: not valid JSON/);
  assert.deepEqual(err.details.map((d: { line: number }) => d.line), [2, 3]);
  assert.match(err.details[1].message, /^n: /);
  const notUtf8 = await post("/bulk", new Uint8Array([0xc3, 0x0a]), nd);
  assert.equal(
    (await notUtf8.json()).error.details[0].message,
    "not valid UTF-8",
  );
  assert.deepEqual(await status(post("/bulk", "x".repeat(65), nd)), [
    413,
    "too_large",
  ]);
  assert.deepEqual(await status(post("/strict", '{"n":1}')), [
    415,
    "unsupported_media_type",
  ]);
  assert.deepEqual(
    await status(
      a.request("/strict", { method: "POST", body: new Uint8Array([123]) }),
    ),
    [415, "unsupported_media_type"],
  );
  assert.deepEqual(await status(a.request("/x/%E0%A4%A")), [
    400,
    "bad_request",
  ]);
  assert.deepEqual(await status(a.request("/x/a?b=%ZZ")), [400, "bad_request"]);
  assert.deepEqual(await (await a.request("/x/caf%C3%A9")).json(), {
    id: "café",
  });
});

Deno.test("a body read whole by its declared length keeps the limit, even when the length lies", async () => {
  const a = app();
  const big = JSON.stringify({ n: 1, pad: "x".repeat(200) });
  // An in-process Request can declare fewer bytes than it carries.
  assert.deepEqual(
    await status(a.request("/echo", {
      method: "POST",
      headers: { ...json, "content-length": "10" },
      body: big,
    })),
    [413, "too_large"],
  );
  const ok = await a.request("/echo", {
    method: "POST",
    headers: { ...json, "content-length": "7" },
    body: '{"n":5}',
  });
  assert.deepEqual(await ok.json(), { n: 5 });
});
