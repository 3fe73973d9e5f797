import assert from "node:assert/strict";
import { Hono } from "hono";
import {
  edgeGuard,
  requirePeer,
  requireRole,
  sameSecret,
  TokenAuth,
} from "./access_guard.ts";
import { installErrorHandlers } from "./error_handler.ts";

const tokens = {
  read: "r".repeat(20),
  write: "w".repeat(20),
  admin: "a".repeat(20),
};

function app(auth: TokenAuth | "off" = new TokenAuth(tokens)) {
  const a = new Hono();
  a.use(
    "*",
    edgeGuard({
      auth,
      hosts: ["127.0.0.1", "localhost"],
      publicPaths: ["/healthz"],
    }),
  );
  a.get("/healthz", (c) => c.json({ ok: true }));
  a.get("/v1/x", (c) => c.json({ read: true }));
  a.post("/v1/x", requireRole("write"), (c) => c.json({ wrote: true }));
  a.post("/v1/admin", requireRole("admin"), (c) => c.json({ admin: true }));
  installErrorHandlers(a, { name: "test", log: () => {} });
  return a;
}

async function call(
  a: Hono,
  method: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; code?: string }> {
  const res = await a.request(`http://127.0.0.1:1234${path}`, {
    method,
    headers: { host: "127.0.0.1:1234", ...headers },
  });
  const body = await res.json() as { error?: { code: string } };
  return { status: res.status, code: body.error?.code };
}

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

Deno.test("each route class answers 401 without a token, 403 with a lower role, 200 with the right one", async () => {
  const a = app();
  assert.deepEqual(await call(a, "GET", "/v1/x"), {
    status: 401,
    code: "unauthorized",
  });
  assert.deepEqual(await call(a, "POST", "/v1/x"), {
    status: 401,
    code: "unauthorized",
  });
  assert.equal(
    (await call(a, "GET", "/v1/x", bearer(tokens.read))).status,
    200,
  );
  assert.deepEqual(await call(a, "POST", "/v1/x", bearer(tokens.read)), {
    status: 403,
    code: "forbidden",
  });
  assert.equal(
    (await call(a, "POST", "/v1/x", bearer(tokens.write))).status,
    200,
  );
  assert.deepEqual(await call(a, "POST", "/v1/admin", bearer(tokens.write)), {
    status: 403,
    code: "forbidden",
  });
  assert.equal(
    (await call(a, "POST", "/v1/admin", bearer(tokens.admin))).status,
    200,
  );
  assert.deepEqual(await call(a, "GET", "/v1/x", bearer("not-a-token")), {
    status: 401,
    code: "unauthorized",
  });
  assert.deepEqual(
    await call(a, "GET", "/v1/x", { authorization: "Basic abc" }),
    { status: 401, code: "unauthorized" },
  );
  assert.equal((await call(a, "GET", "/healthz")).status, 200);
});

Deno.test("a 401 says how to authenticate", async () => {
  const res = await app().request("http://127.0.0.1/v1/x", {
    headers: { host: "127.0.0.1" },
  });
  assert.equal(res.status, 401);
  assert.match(res.headers.get("www-authenticate") ?? "", /^Bearer/);
  const body = await res.json() as { error: { message: string } };
  assert.match(body.error.message, /read role/);
});

Deno.test("a foreign Host header is refused with 421, whatever the token", async () => {
  const a = app();
  const r = await call(a, "GET", "/v1/x", {
    host: "evil.example:1234",
    ...bearer(tokens.admin),
  });
  assert.deepEqual(r, { status: 421, code: "misdirected" });
  assert.equal(
    (await call(a, "GET", "/v1/x", {
      host: "localhost:1234",
      ...bearer(tokens.read),
    })).status,
    200,
  );
});

Deno.test("cross-site browser requests may not mutate, same-origin ones may", async () => {
  const a = app("off");
  assert.deepEqual(
    await call(a, "POST", "/v1/x", { "sec-fetch-site": "cross-site" }),
    { status: 403, code: "cross_origin" },
  );
  assert.deepEqual(
    await call(a, "POST", "/v1/x", { origin: "http://evil.example" }),
    { status: 403, code: "cross_origin" },
  );
  assert.deepEqual(await call(a, "POST", "/v1/x", { origin: "null" }), {
    status: 403,
    code: "cross_origin",
  });
  assert.equal(
    (await call(a, "POST", "/v1/x", {
      origin: "http://127.0.0.1:1234",
      "sec-fetch-site": "same-origin",
    })).status,
    200,
  );
  // Reads stay readable cross-site (they change nothing; the Host check guards them).
  assert.equal(
    (await call(a, "GET", "/v1/x", { "sec-fetch-site": "cross-site" })).status,
    200,
  );
});

Deno.test("with auth off every caller is admin (the explicit flag's meaning)", async () => {
  assert.equal((await call(app("off"), "POST", "/v1/admin")).status, 200);
});

Deno.test("malformed percent-encoding anywhere in the URL is a 400 before any handler", async () => {
  const a = app("off");
  assert.deepEqual(await call(a, "GET", "/v1/x?a=%zz"), {
    status: 400,
    code: "bad_request",
  });
  assert.deepEqual(await call(a, "GET", "/v1/%E0%A4"), {
    status: 400,
    code: "bad_request",
  });
  assert.deepEqual(await call(a, "GET", "/v1/a%"), {
    status: 400,
    code: "bad_request",
  });
});

Deno.test("a POST in a content type a page may send anywhere is refused before any handler", async () => {
  const a = app("off");
  for (
    const type of [
      "text/plain",
      "application/x-www-form-urlencoded; charset=utf-8",
      "multipart/form-data; boundary=x",
    ]
  ) {
    assert.deepEqual(await call(a, "POST", "/v1/x", { "content-type": type }), {
      status: 415,
      code: "unsupported_media_type",
    });
  }
  assert.equal(
    (await call(a, "POST", "/v1/x", { "content-type": "application/json" }))
      .status,
    200,
  );
});

Deno.test("with publicReads a page loads without a token while its actions still need one", async () => {
  const a = new Hono();
  a.use(
    "*",
    edgeGuard({
      auth: new TokenAuth({ write: tokens.write }),
      hosts: ["127.0.0.1"],
      publicReads: true,
    }),
  );
  a.get("/", (c) => c.json({ page: true }));
  a.post("/act", requireRole("write"), (c) => c.json({ done: true }));
  installErrorHandlers(a, { name: "test", log: () => {} });
  assert.equal((await call(a, "GET", "/")).status, 200);
  assert.equal((await call(a, "POST", "/act")).status, 401);
  assert.equal(
    (await call(a, "POST", "/act", bearer(tokens.write))).status,
    200,
  );
});

Deno.test("IPv6 loopback names match with and without a port", async () => {
  const a = new Hono();
  a.use("*", edgeGuard({ auth: "off", hosts: ["::1", "[fe80::1]"] }));
  a.get("/", (c) => c.json({ ok: true }));
  installErrorHandlers(a, { name: "test", log: () => {} });
  for (const host of ["[::1]:2380", "[::1]", "[fe80::1]:1"]) {
    const res = await a.request("http://x/", { headers: { host } });
    assert.equal(res.status, 200, host);
  }
  const res = await a.request("http://x/", { headers: { host: "[::2]:1" } });
  assert.equal(res.status, 421);
  assert.match(JSON.stringify(await res.json()), /answers to ::1, fe80::1/);
});

Deno.test("basicAuth: the token as a Basic password grants its role; a 401 asks for Basic; without the option Basic is refused", async () => {
  const a = new Hono();
  a.use(
    "*",
    edgeGuard({ auth: new TokenAuth(tokens), hosts: "any", basicAuth: true }),
  );
  a.get("/v1/x", (c) => c.json({ read: true }));
  a.post("/v1/x", requireRole("write"), (c) => c.json({ wrote: true }));
  installErrorHandlers(a, { name: "test", log: () => {} });
  const basic = (user: string, password: string) =>
    `Basic ${btoa(`${user}:${password}`)}`;
  const none = await a.request("http://h/v1/x");
  assert.equal(none.status, 401);
  assert.equal(
    none.headers.get("www-authenticate"),
    'Basic realm="strata", charset="UTF-8"',
  );
  await none.body?.cancel();
  const ok = await a.request("http://h/v1/x", {
    headers: { authorization: basic("anyone", tokens.read) },
  });
  assert.equal(ok.status, 200);
  await ok.body?.cancel();
  const post = (authorization: string) =>
    a.request("http://h/v1/x", {
      method: "POST",
      headers: { authorization, "content-type": "application/json" },
      body: "{}",
    });
  const low = await post(basic("", tokens.read));
  assert.equal(low.status, 403);
  await low.body?.cancel();
  const high = await post(basic("x", tokens.write));
  assert.equal(high.status, 200);
  await high.body?.cancel();
  const wrong = await a.request("http://h/v1/x", {
    headers: { authorization: basic("x", "not a token") },
  });
  assert.equal(wrong.status, 401);
  assert.match((await wrong.json()).error.message, /Basic password/);
  const garbled = await a.request("http://h/v1/x", {
    headers: { authorization: "Basic %%%" },
  });
  assert.equal(garbled.status, 401);
  await garbled.body?.cancel();

  // Without the option: Basic is not a way in, and 401 asks for Bearer.
  const plain = app();
  const res = await plain.request("http://127.0.0.1:1234/v1/x", {
    headers: {
      host: "127.0.0.1:1234",
      authorization: basic("x", tokens.admin),
    },
  });
  assert.equal(res.status, 401);
  assert.equal(res.headers.get("www-authenticate"), 'Bearer realm="strata"');
  await res.body?.cancel();
});

Deno.test("requirePeer: only the peer secret reaches an internal route; the peer secret also passes user routes", async () => {
  const peer = "p".repeat(20);
  const a = new Hono();
  a.use(
    "*",
    edgeGuard({
      auth: new TokenAuth(tokens),
      hosts: ["127.0.0.1"],
      peerSecret: peer,
    }),
  );
  a.post("/internal/x", requirePeer(), (c) => c.json({ ok: true }));
  a.post("/v1/admin", requireRole("admin"), (c) => c.json({ ok: true }));
  installErrorHandlers(a, { name: "test", log: () => {} });
  assert.equal((await call(a, "POST", "/internal/x")).status, 401);
  for (const t of Object.values(tokens)) {
    assert.deepEqual(await call(a, "POST", "/internal/x", bearer(t)), {
      status: 401,
      code: "unauthorized",
    });
  }
  assert.equal(
    (await call(a, "POST", "/internal/x", bearer(peer))).status,
    200,
  );
  assert.equal((await call(a, "POST", "/v1/admin", bearer(peer))).status, 200);
  // Without peerSecret the guard knows no peer: the secret is just a bad token.
  const plain = app();
  assert.equal(
    (await call(plain, "GET", "/v1/x", bearer(peer))).status,
    401,
  );
  // Auth off: every caller counts as a peer.
  const off = new Hono();
  off.use("*", edgeGuard({ auth: "off", hosts: ["127.0.0.1"] }));
  off.post("/internal/x", requirePeer(), (c) => c.json({ ok: true }));
  assert.equal((await call(off, "POST", "/internal/x")).status, 200);
});

Deno.test("sameSecret: equal only for the same string (prefixes, longer strings, one changed char and the empty string differ)", () => {
  const secret = "k".repeat(42) + "Z";
  assert.equal(sameSecret(secret, secret), true);
  assert.equal(sameSecret(secret.slice(0, 42), secret), false);
  assert.equal(sameSecret(secret + "Z", secret), false);
  assert.equal(sameSecret("k".repeat(43), secret), false);
  assert.equal(sameSecret("", secret), false);
  assert.equal(sameSecret("Z" + "k".repeat(42), secret), false);
  const auth = new TokenAuth(tokens);
  assert.equal(auth.roleOf(tokens.write), "write");
  assert.equal(auth.roleOf(tokens.write.slice(1)), undefined);
});
