import assert from "node:assert/strict";
import type { KvCommand } from "./kv_commands.ts";
import { KvStateMachine } from "./kv_state_machine.ts";
import { TokenAuth } from "@strata/edge";
import { createHttpApi, DEFAULT_LIMITS } from "./http_api.ts";
import { type KvService, ServiceError } from "./kv_service.ts";
import { WatchHub } from "./watch_hub.ts";

/** A test double: the non-replicated state machine behind the HTTP API. */
function localService(opts: { noLeader?: boolean } = {}): KvService {
  const store = new KvStateMachine();
  const watches = new WatchHub();
  let index = 0;
  return {
    store,
    watches,
    propose(command: KvCommand) {
      if (opts.noLeader) {
        return Promise.reject(new ServiceError("no_leader", "no leader"));
      }
      const out = store.apply(++index, command)!;
      watches.publish(out.events);
      return Promise.resolve(out.result);
    },
    readBarrier: () =>
      opts.noLeader
        ? Promise.reject(new ServiceError("no_leader", "no leader"))
        : Promise.resolve(),
    status: () => ({
      id: 1,
      role: "leader",
      term: 1,
      leader: 1,
      commitIndex: index,
      appliedIndex: index,
      firstIndex: 1,
      lastIndex: index,
      logBytes: 0,
      snapshotIndex: 0,
      keys: store.size,
      sessions: store.sessionCount,
      watchers: watches.watchers,
    }),
    members: () => [{ id: 1, role: "voter" }],
    changeMembership: () =>
      Promise.reject(new ServiceError("bad_request", "single node")),
    configuration: () => ({ voters: [1], learners: [] }),
    changeMembers: () =>
      Promise.reject(new ServiceError("bad_request", "single node")),
    transferLeadership: () => Promise.resolve(1),
    metrics: () => Promise.resolve("# none\n"),
  };
}

const TOKENS = {
  read: "read-token-0123456789",
  write: "write-token-0123456789",
  admin: "admin-token-0123456789",
};
const ACCESS = {
  auth: new TokenAuth(TOKENS),
  hosts: ["localhost", "127.0.0.1"],
};
const AS_ADMIN = { authorization: `Bearer ${TOKENS.admin}` };

/**
 * The API with auth on; requests carry `token` (the admin's by default)
 * and, for POST/DELETE bodies, `content-type: application/json` as every
 * client sends (the 415 without it is tested on its own).
 */
function client(
  service = localService(),
  limits = DEFAULT_LIMITS,
  token: string | undefined = TOKENS.admin,
) {
  const app = createHttpApi(service, ACCESS, limits);
  return async (
    method: string,
    path: string,
    body?: BodyInit,
    headers: Record<string, string> = {},
  ) => {
    const res = await app.request(path, {
      method,
      body,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined && method !== "PUT"
          ? { "content-type": "application/json" }
          : {}),
        ...headers,
      },
    });
    const text = await res.text();
    let json: unknown = undefined;
    try {
      json = JSON.parse(text);
    } catch { /* SSE or text */ }
    return { status: res.status, json: json as Record<string, unknown>, text };
  };
}

Deno.test("curl-style put stores the raw body and get answers JSON with the revision", async () => {
  const call = client();
  const put = await call("PUT", "/v1/kv/foo", "bar");
  assert.deepEqual(put, {
    status: 200,
    json: { key: "foo", revision: 1 },
    text: put.text,
  });
  const get = await call("GET", "/v1/kv/foo");
  assert.equal(get.status, 200);
  assert.deepEqual(get.json, {
    key: "foo",
    value: "bar",
    revision: 1,
    createRevision: 1,
    version: 1,
  });
  const json = await call(
    "PUT",
    "/v1/kv/dir/a%20b",
    JSON.stringify({ value: "//4=", encoding: "base64" }),
    {
      "content-type": "application/json",
    },
  );
  assert.equal(json.status, 200);
  const bin = await call("GET", "/v1/kv/dir/a%20b");
  // Not UTF-8, so it comes back as base64 and says so.
  assert.deepEqual([bin.json.value, bin.json.encoding], ["//4=", "base64"]);
  const missing = await call("GET", "/v1/kv/nope");
  assert.equal(missing.status, 404);
  assert.equal((missing.json.error as { code: string }).code, "not_found");
});

Deno.test("scan, delete, cas and txn answer with revisions", async () => {
  const call = client();
  for (const k of ["a/1", "a/2", "a/3", "b/1"]) {
    await call("PUT", `/v1/kv/${k}`, k);
  }
  const scan = await call("GET", "/v1/kv?prefix=a/&limit=2");
  assert.deepEqual(
    (scan.json.kvs as Array<{ key: string }>).map((k) => k.key),
    ["a/1", "a/2"],
  );
  assert.equal(scan.json.more, true);
  const next = await call("GET", "/v1/kv?prefix=a/&limit=2&after=a/2");
  assert.deepEqual(
    (next.json.kvs as Array<{ key: string }>).map((k) => k.key),
    ["a/3"],
  );
  const del = await call("DELETE", "/v1/kv/a/3");
  assert.deepEqual(del.json, { key: "a/3", deleted: true, revision: 5 });
  const cas = await call(
    "POST",
    "/v1/kv/a/1/cas",
    JSON.stringify({ expectValue: "a/1", value: "x" }),
  );
  assert.equal(cas.json.succeeded, true);
  const casFail = await call(
    "POST",
    "/v1/kv/a/1/cas",
    JSON.stringify({ expectRevision: 1, value: "y" }),
  );
  assert.equal(casFail.json.succeeded, false);
  assert.equal((casFail.json.current as { value: string }).value, "x");
  const txn = await call(
    "POST",
    "/v1/txn",
    JSON.stringify({
      compare: [{ key: "b/1", target: "exists", op: "==", value: 1 }],
      success: [{ op: "delete", key: "b/1" }, {
        op: "put",
        key: "c",
        value: "moved",
      }],
      failure: [],
    }),
  );
  assert.equal(txn.status, 200);
  assert.equal(txn.json.succeeded, true);
  assert.equal((await call("GET", "/v1/kv/c")).json.value, "moved");
});

Deno.test("bad keys, oversized values and malformed bodies get a 4xx JSON error", async () => {
  const call = client(localService(), {
    ...DEFAULT_LIMITS,
    maxValueBytes: 16,
    maxKeyBytes: 8,
  });
  const cases: Array<
    [
      string,
      string,
      BodyInit | undefined,
      Record<string, string>,
      number,
      string,
    ]
  > = [
    ["PUT", "/v1/kv/", "x", {}, 404, "not_found"],
    ["PUT", "/v1/kv/%FF%FE", "x", {}, 400, "bad_request"],
    ["PUT", "/v1/kv/waytoolongkey", "x", {}, 400, "bad_request"],
    ["PUT", "/v1/kv/k", "x".repeat(17), {}, 413, "too_large"],
    [
      "PUT",
      "/v1/kv/k",
      "{nope",
      { "content-type": "application/json" },
      400,
      "bad_request",
    ],
    [
      "PUT",
      "/v1/kv/k",
      JSON.stringify({ value: "v", extra: 1 }),
      { "content-type": "application/json" },
      400,
      "bad_request",
    ],
    [
      "PUT",
      "/v1/kv/k",
      JSON.stringify({ value: 5 }),
      { "content-type": "application/json" },
      400,
      "bad_request",
    ],
    [
      "PUT",
      "/v1/kv/k",
      JSON.stringify({ value: "!!", encoding: "base64" }),
      { "content-type": "application/json" },
      400,
      "bad_request",
    ],
    [
      "POST",
      "/v1/kv/k/cas",
      JSON.stringify({ value: "v" }),
      {},
      400,
      "bad_request",
    ],
    [
      "POST",
      "/v1/txn",
      JSON.stringify({
        compare: [{ key: "k", target: "value", op: "==", value: 3 }],
      }),
      {},
      400,
      "bad_request",
    ],
    ["GET", "/v1/kv?limit=999999", undefined, {}, 400, "bad_request"],
    ["GET", "/v1/kv/k?consistency=eventual", undefined, {}, 400, "bad_request"],
    [
      "POST",
      "/v1/sessions",
      JSON.stringify({ ttlMs: 5 }),
      {},
      400,
      "bad_request",
    ],
    ["POST", "/v1/sessions/abc/keepalive", undefined, {}, 400, "bad_request"],
    ["POST", "/v1/sessions/99/keepalive", undefined, {}, 404, "not_found"],
    ["GET", "/v1/nothing", undefined, {}, 404, "not_found"],
  ];
  for (const [method, path, body, headers, status, code] of cases) {
    const r = await call(method, path, body, headers);
    assert.equal(r.status, status, `${method} ${path}: ${r.text}`);
    assert.equal(
      (r.json.error as { code: string }).code,
      code,
      `${method} ${path}`,
    );
    assert.equal(
      typeof (r.json.error as { message: string }).message,
      "string",
    );
  }
  // Still serving.
  assert.equal((await call("PUT", "/v1/kv/k", "ok")).status, 200);
});

Deno.test("without a leader, writes and linearizable reads answer 503 no_leader", async () => {
  const call = client(localService({ noLeader: true }));
  const put = await call("PUT", "/v1/kv/k", "v");
  assert.equal(put.status, 503);
  assert.equal((put.json.error as { code: string }).code, "no_leader");
  assert.equal((await call("GET", "/v1/kv/k")).status, 503);
});

Deno.test("sessions bind keys and locks give fencing tokens over HTTP", async () => {
  const service = localService();
  const call = client(service);
  const s1 =
    (await call("POST", "/v1/sessions", JSON.stringify({ ttlMs: 5000 }))).json
      .id as number;
  const s2 =
    (await call("POST", "/v1/sessions", JSON.stringify({ ttlMs: 5000 }))).json
      .id as number;
  const a = await call(
    "POST",
    "/v1/locks/master",
    JSON.stringify({ session: s1 }),
  );
  assert.deepEqual([a.status, a.json.acquired, a.json.token], [200, true, 3]);
  const b = await call(
    "POST",
    "/v1/locks/master",
    JSON.stringify({ session: s2 }),
  );
  assert.deepEqual([b.status, b.json.acquired, b.json.holder], [
    409,
    false,
    s1,
  ]);
  // A waiting acquire succeeds once the holder's session closes.
  const waiting = call(
    "POST",
    "/v1/locks/master",
    JSON.stringify({ session: s2, waitMs: 3000 }),
  );
  await new Promise((r) => setTimeout(r, 20));
  assert.equal((await call("DELETE", `/v1/sessions/${s1}`)).status, 200);
  const got = await waiting;
  assert.equal(got.json.acquired, true);
  assert.ok((got.json.token as number) > 3);
  const holder = await call("GET", "/v1/locks/master");
  assert.equal(holder.json.holder, s2);
});

Deno.test("a lock wait that runs out while the holder keeps the lock proposes once, not again to hear the same answer", async () => {
  const service = localService();
  const proposed: string[] = [];
  const propose = service.propose.bind(service);
  service.propose = (command, signal) => {
    proposed.push(command.op);
    return propose(command, signal);
  };
  const call = client(service);
  const open = async () =>
    (await call("POST", "/v1/sessions", JSON.stringify({ ttlMs: 5000 }))).json
      .id as number;
  const [s1, s2] = [await open(), await open()];
  await call("POST", "/v1/locks/m", JSON.stringify({ session: s1 }));
  proposed.length = 0;
  const r = await call(
    "POST",
    "/v1/locks/m",
    JSON.stringify({ session: s2, waitMs: 200 }),
  );
  assert.deepEqual([r.status, r.json.acquired, r.json.holder], [
    409,
    false,
    s1,
  ]);
  assert.deepEqual(proposed, ["lock"]);
});

Deno.test("a watch streams committed changes as server-sent events, resumable by revision", async () => {
  const service = localService();
  const app = createHttpApi(service, ACCESS);
  const put = (path: string, body: string) =>
    app.request(path, { method: "PUT", body, headers: AS_ADMIN });
  await put("/v1/kv/w/1", "one");
  await put("/v1/kv/x", "other");
  const ac = new AbortController();
  const res = await app.request("/v1/watch?prefix=w/&from=1", {
    signal: ac.signal,
    headers: AS_ADMIN,
  });
  assert.equal(res.headers.get("content-type"), "text/event-stream");
  const reader = res.body!.getReader();
  await put("/v1/kv/w/2", "two");
  let text = "";
  while (!text.includes('"w/2"')) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  ac.abort();
  await reader.cancel();
  assert.match(
    text,
    /event: put\ndata: .*"key":"w\/1".*"value":"one".*\nid: 1\n/,
  );
  assert.match(text, /"key":"w\/2".*\nid: 3\n/);
  assert.doesNotMatch(text, /"key":"x"/);
});

/** Every route, the role it needs and a body that passes validation. */
const ROUTES: Array<{
  method: string;
  path: string;
  role: "read" | "write" | "admin";
  body?: unknown;
}> = [
  { method: "GET", path: "/v1/kv/k", role: "read" },
  { method: "GET", path: "/v1/kv", role: "read" },
  { method: "GET", path: "/v1/locks/l", role: "read" },
  { method: "GET", path: "/v1/watch", role: "read" },
  { method: "GET", path: "/v1/status", role: "read" },
  { method: "GET", path: "/v1/cluster", role: "read" },
  { method: "GET", path: "/metrics", role: "read" },
  { method: "PUT", path: "/v1/kv/k", role: "write", body: { value: "v" } },
  {
    method: "POST",
    path: "/v1/kv/k/cas",
    role: "write",
    body: { expectRevision: 0, value: "v" },
  },
  { method: "DELETE", path: "/v1/kv/k", role: "write" },
  { method: "POST", path: "/v1/txn", role: "write", body: {} },
  {
    method: "POST",
    path: "/v1/sessions",
    role: "write",
    body: { ttlMs: 5000 },
  },
  { method: "POST", path: "/v1/sessions/1/keepalive", role: "write" },
  { method: "DELETE", path: "/v1/sessions/1", role: "write" },
  { method: "POST", path: "/v1/locks/l", role: "write", body: { session: 1 } },
  {
    method: "DELETE",
    path: "/v1/locks/l",
    role: "write",
    body: { session: 1 },
  },
  {
    method: "POST",
    path: "/v1/cluster/members",
    role: "admin",
    body: { action: "remove", id: 9 },
  },
  {
    method: "POST",
    path: "/v1/cluster/changes",
    role: "admin",
    body: { changes: [{ action: "remove", id: 9 }] },
  },
  {
    method: "POST",
    path: "/v1/cluster/transfer-leadership",
    role: "admin",
    body: {},
  },
];

Deno.test("every route answers 401 without a token, 403 with a lower role, and serves the right role", async () => {
  const app = createHttpApi(localService(), ACCESS);
  const send = async (r: typeof ROUTES[number], token?: string) => {
    const ac = new AbortController();
    const res = await app.request(r.path, {
      method: r.method,
      signal: ac.signal,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(r.body !== undefined ? { "content-type": "application/json" } : {}),
      },
      body: r.body === undefined ? undefined : JSON.stringify(r.body),
    });
    ac.abort(); // the watch streams until aborted
    await res.body?.cancel();
    return res.status;
  };
  const lower = {
    read: [],
    write: ["read"],
    admin: ["read", "write"],
  } as const;
  for (const r of ROUTES) {
    const what = `${r.method} ${r.path}`;
    assert.equal(await send(r), 401, `${what} without a token`);
    assert.equal(await send(r, "wrong-token-0123456789"), 401, what);
    for (const role of lower[r.role]) {
      assert.equal(await send(r, TOKENS[role]), 403, `${what} as ${role}`);
    }
    const ok = await send(r, TOKENS[r.role]);
    assert.ok(ok !== 401 && ok !== 403 && ok < 500, `${what}: ${ok}`);
  }
});

Deno.test("a foreign Host and a cross-site mutation are refused even with a token", async () => {
  const call = client();
  const foreign = await call("GET", "/v1/status", undefined, {
    host: "rebound.example",
  });
  assert.equal(foreign.status, 421);
  const cross = await call(
    "POST",
    "/v1/cluster/transfer-leadership",
    "{}",
    { origin: "http://evil.example", "sec-fetch-site": "cross-site" },
  );
  assert.equal(cross.status, 403);
  assert.equal((cross.json.error as { code: string }).code, "cross_origin");
  // The attack of the issue: a text/plain "simple" POST carries no command.
  const simple = await call("POST", "/v1/cluster/transfer-leadership", "{}", {
    "content-type": "text/plain",
  });
  assert.equal(simple.status, 415);
});

async function rawRequest(port: number, head: string, body: string) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(head + body));
    await conn.closeWrite();
    const buf = new Uint8Array(4096);
    let text = "";
    const until = performance.now() + 10_000;
    while (performance.now() < until) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    return text;
  } finally {
    conn.close();
  }
}

Deno.test("bad input on every route — truncated bodies, malformed percent-encoding, wrong content types — gets only 4xx and the server keeps serving", async () => {
  const app = createHttpApi(localService(), ACCESS);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    app.fetch,
  );
  const port = server.addr.port;
  const base = `http://127.0.0.1:${port}`;
  try {
    for (const r of ROUTES) {
      const what = `${r.method} ${r.path}`;
      // Malformed percent-encoding in the path and in the query.
      const badPath = r.path.replace(/\/(k|l|1)(\/|$)/, "/%zz$2");
      const targets = [`${r.path}?prefix=%E0%A4`];
      if (badPath !== r.path) targets.push(badPath);
      for (const t of targets) {
        const res = await fetch(base + t, {
          method: r.method,
          headers: { ...AS_ADMIN, "content-type": "application/json" },
          body: r.body === undefined ? undefined : JSON.stringify(r.body),
        });
        await res.body?.cancel();
        assert.equal(res.status, 400, `${what} at ${t}`);
      }
      if (r.method === "GET") continue;
      // JSON commands only as application/json (PUT also takes raw bytes).
      // (A bodiless DELETE reads no body: there is nothing to refuse.)
      if (
        r.method === "POST" || (r.method === "DELETE" && r.body !== undefined)
      ) {
        for (
          const type of ["text/plain", "application/x-www-form-urlencoded"]
        ) {
          const res: Response = await fetch(base + r.path, {
            method: r.method,
            headers: { ...AS_ADMIN, "content-type": type },
            body: JSON.stringify(r.body ?? {}),
          });
          await res.body?.cancel();
          assert.equal(res.status, 415, `${what} as ${type}`);
        }
      }
      // A body cut short: 50 bytes declared, 9 sent, then the client stops.
      const answer = await rawRequest(
        port,
        `${r.method} ${r.path} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${TOKENS.admin}\r\ncontent-type: application/json\r\ncontent-length: 50\r\n\r\n`,
        '{"value":',
      );
      // Never a 5xx; a 400 where the route reads a body (others ignore it).
      assert.doesNotMatch(answer, /^HTTP\/1\.1 5/, what);
      if (r.body !== undefined) {
        assert.match(answer, /^HTTP\/1\.1 400/, what);
      }
    }
    const res = await fetch(`${base}/v1/status`, { headers: AS_ADMIN });
    assert.equal(res.status, 200);
    await res.body?.cancel();
  } finally {
    await server.shutdown();
  }
});
