import assert from "node:assert/strict";
import { summarizeRaft } from "./cluster_snapshot.ts";
import type { ClusterSnapshot } from "./cluster_snapshot.ts";
import { createDashboardApp } from "./dashboard_server.ts";
import type { PlaygroundBackend } from "./playground_backend.ts";
import { PlaygroundError } from "./playground_error.ts";
import { createSimApi } from "./sim_api.ts";

function snapshot(at: number): ClusterSnapshot {
  return {
    at,
    raft: summarizeRaft([]),
    gfs: {
      masterUrl: null,
      masters: [],
      leaderIndex: null,
      reachable: false,
      error: null,
      chunkservers: [],
      chunks: 0,
      underReplicated: 0,
      lost: 0,
      files: 0,
      clonesInFlight: 0,
      clonesDone: 0,
      uploads: [],
    },
    search: { url: null, reachable: false, error: null, docs: 0, shards: [] },
    follows: [],
    tables: {
      reachable: false,
      error: null,
      masters: [],
      active: null,
      servers: [],
      tablets: [],
      events: [],
      row: null,
    },
  };
}

/**
 * A backend that records calls; raft node 3 and GFS master 2 are "killed"
 * so a second kill conflicts, and master 2 is the one that can restart.
 */
function fakeBackend() {
  const calls: string[] = [];
  const subscribers = new Set<(s: ClusterSnapshot) => void>();
  let uploaded = 0;
  const backend: PlaygroundBackend = {
    snapshot: () => snapshot(1),
    subscribe(fn) {
      subscribers.add(fn);
      return () => subscribers.delete(fn);
    },
    raftNodeIds: () => [1, 2, 3],
    raftAction(id, action) {
      calls.push(`${action} ${id}`);
      if (id === 3 && action === "kill") {
        return Promise.reject(
          new PlaygroundError("conflict", "node 3 is already killed"),
        );
      }
      return Promise.resolve();
    },
    transferLeadership: (to) => Promise.resolve(to ?? 2),
    writeKey(key, value, node) {
      calls.push(`write ${key}=${value}@${node ?? "leader"}`);
      return Promise.resolve({
        key,
        node: node ?? 1,
        revision: 9,
        term: 2,
        tookMs: 1,
      });
    },
    follow: (key) => void calls.push(`follow ${key}`),
    chunkserverCount: () => 3,
    chunkserverAction(index, action) {
      calls.push(`cs ${action} ${index}`);
      return Promise.resolve();
    },
    masterCount: () => 3,
    masterAction(index, action) {
      calls.push(`master ${action} ${index}`);
      if ((index === 2) !== (action === "restart")) {
        return Promise.reject(
          new PlaygroundError(
            "conflict",
            index === 2
              ? "master 2 is already killed"
              : `master ${index} is running; kill it first`,
          ),
        );
      }
      return Promise.resolve();
    },
    async upload(name, body) {
      for await (const chunk of body) uploaded += chunk.length;
      return { path: `/uploads/${name}`, length: uploaded, chunks: 1 };
    },
    search: (q) =>
      Promise.resolve({
        query: q,
        tookMs: 3,
        mergeMs: 0.1,
        partial: false,
        shards: [{ shard: 0, replica: 1, ms: 2, hits: 1 }],
        hits: [{ id: "a", score: 1, name: "n", snippet: "s" }],
      }),
    tablesIds: (kind) => kind === "master" ? ["m1", "m2"] : ["ts1", "ts2"],
    tablesAction(kind, id, action) {
      calls.push(`tables ${kind} ${action} ${id}`);
      if (id === "ts2" && action === "kill") {
        return Promise.reject(
          new PlaygroundError(
            "conflict",
            "tables server ts2 is already killed",
          ),
        );
      }
      return Promise.resolve();
    },
    splitTablet(id) {
      calls.push(`split ${id}`);
      return id === "t1" ? Promise.resolve(["t2", "t3"]) : Promise.reject(
        new PlaygroundError("not_found", `there is no tablet ${id}`),
      );
    },
    followRow: (table, row) => void calls.push(`follow row ${table}/${row}`),
    writeRow(table, row, column, value) {
      calls.push(`write row ${table}/${row} ${column}=${value}`);
      return Promise.resolve({ table, row, tookMs: 2 });
    },
    roomSubscribe(room, server) {
      calls.push(`subscribe ${room}@${server}`);
      return server === "ts9"
        ? Promise.reject(
          new PlaygroundError("not_found", "there is no tablet server ts9"),
        )
        : Promise.resolve({ id: 1, room, server });
    },
    roomPublish(room, data, via) {
      calls.push(`publish ${room} ${data} via ${via ?? "any"}`);
      return Promise.resolve({
        room,
        n: 1,
        via: via ?? "ts1",
        seq: 1,
        servers: 1,
        delivered: 1,
        tookMs: 1,
      });
    },
    rooms: () => ({ rooms: [], latency: null }),
    seriesWrite(series, points, spanMs) {
      calls.push(`series ${series} ${points} over ${spanMs}`);
      return Promise.resolve({
        table: "metrics",
        series,
        written: points,
        tookMs: 1,
      });
    },
    series: (series) =>
      Promise.resolve({
        table: "metrics",
        series,
        bucketMs: 1000,
        points: 0,
        buckets: [],
        tablets: [],
        busiest: null,
      }),
  };
  return {
    backend,
    calls,
    publish: (s: ClusterSnapshot) => subscribers.forEach((f) => f(s)),
  };
}

const PAGE_TOKEN = "page-token-for-this-test-run";
const AS_PAGE = { authorization: `Bearer ${PAGE_TOKEN}` };

function app(reportFile = "/nonexistent/report.html") {
  const fake = fakeBackend();
  return {
    ...fake,
    app: createDashboardApp({
      backend: fake.backend,
      sim: createSimApi(),
      reportFile,
      pageToken: PAGE_TOKEN,
    }),
  };
}

async function errorOf(
  res: Response,
): Promise<{ code: string; message: string }> {
  assert.match(res.headers.get("content-type") ?? "", /application\/json/);
  const body = await res.json();
  assert.equal(typeof body.error.code, "string");
  assert.equal(typeof body.error.message, "string");
  return body.error;
}

/** A POST as the page sends it: JSON, with the run's token. */
const post = (_path: string, body?: string): RequestInit => ({
  method: "POST",
  body,
  headers: { "content-type": "application/json", ...AS_PAGE },
});

Deno.test("the page and its modules are served, and nothing outside the static folder is", async () => {
  const { app: a } = app();
  const page = await a.request("/");
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<title>strata playground<\/title>/);
  const js = await a.request("/static/dashboard.js");
  assert.equal(js.status, 200);
  assert.match(js.headers.get("content-type")!, /javascript/);
  await js.body?.cancel();
  for (
    const path of ["/static/..%2Fmain.ts", "/static/nope.js", "/static/.hidden"]
  ) {
    const res = await a.request(path);
    assert.equal(res.status, 404, path);
    await errorOf(res);
  }
});

Deno.test("bad bodies get a 400 JSON error that names the field, and the backend is not called", async () => {
  const { app: a, calls } = app();
  const cases: Array<[string, string, RegExp]> = [
    ["/api/raft/write", "{not json", /not valid JSON/],
    ["/api/raft/write", JSON.stringify({ key: "", value: "v" }), /body\.key/],
    ["/api/raft/write", JSON.stringify({ key: "k" }), /body\.value/],
    [
      "/api/raft/write",
      JSON.stringify({ key: "k", value: "v", node: -1 }),
      /body\.node/,
    ],
    [
      "/api/raft/write",
      JSON.stringify({ key: "k", value: "v", extra: 1 }),
      /body/,
    ],
    [
      "/api/raft/write",
      JSON.stringify({ key: "k".repeat(2000), value: "v" }),
      /longer than 1024/,
    ],
    ["/api/follow", JSON.stringify({ key: 5 }), /body\.key/],
    ["/api/raft/transfer", JSON.stringify({ to: "two" }), /body\.to/],
    ["/api/raft/nodes/1/explode", "", /path\.action/],
    ["/api/raft/nodes/x/kill", "", /path\.id/],
    ["/api/gfs/chunkservers/0/pause", "", /path\.action/],
    ["/api/gfs/masters/0/pause", "", /path\.action/],
    ["/api/gfs/masters/-1/kill", "", /path\.index/],
    ["/api/gfs/masters/leader/kill", "", /path\.index/],
    ["/api/gfs/masters/1.5/kill", "", /path\.index/],
  ];
  for (const [path, body, message] of cases) {
    const res = await a.request(path, post(path, body));
    assert.equal(res.status, 400, `${path} ${body}`);
    const e = await errorOf(res);
    assert.equal(e.code, "bad_request");
    assert.match(e.message, message, `${path} ${body}`);
  }
  assert.deepEqual(calls, []);
});

Deno.test("an unknown raft node or chunkserver is a 404, a refused action a 409", async () => {
  const { app: a, calls } = app();
  const cases: Array<[string, string]> = [
    ["/api/raft/nodes/9/kill", ""],
    ["/api/raft/transfer", JSON.stringify({ to: 7 })],
    ["/api/raft/write", JSON.stringify({ key: "k", value: "v", node: 4 })],
    ["/api/gfs/chunkservers/3/kill", ""],
  ];
  for (const [path, body] of cases) {
    const res = await a.request(path, post(path, body));
    assert.equal(res.status, 404, path);
    assert.equal((await errorOf(res)).code, "not_found");
  }
  const conflict = await a.request("/api/raft/nodes/3/kill", post("", ""));
  assert.equal(conflict.status, 409);
  assert.match((await errorOf(conflict)).message, /already killed/);
  assert.deepEqual(calls, ["kill 3"]);
});

Deno.test("valid actions reach the backend and answer JSON", async () => {
  const { app: a, calls } = app();
  assert.equal(
    (await a.request("/api/raft/nodes/2/pause", post("", ""))).status,
    200,
  );
  const w = await a.request(
    "/api/raft/write",
    post("", JSON.stringify({ key: "color", value: "red", node: 2 })),
  );
  assert.deepEqual(await w.json(), {
    key: "color",
    node: 2,
    revision: 9,
    term: 2,
    tookMs: 1,
  });
  assert.deepEqual(
    await (await a.request("/api/raft/transfer", post("", ""))).json(),
    { leader: 2 },
  );
  assert.equal(
    (await a.request("/api/follow", post("", '{"key":"color"}'))).status,
    200,
  );
  assert.equal(
    (await a.request("/api/gfs/chunkservers/1/kill", post("", ""))).status,
    200,
  );
  assert.deepEqual(calls, [
    "pause 2",
    "write color=red@2",
    "follow color",
    "cs kill 1",
  ]);
});

Deno.test("a search needs words, and answers with per-shard timings", async () => {
  const { app: a } = app();
  const empty = await a.request("/api/search?q=%20%20");
  assert.equal(empty.status, 400);
  assert.match((await errorOf(empty)).message, /query\.q/);
  const big = await a.request("/api/search?q=x&size=1000");
  assert.equal(big.status, 400);
  await big.body?.cancel();
  const ok = await a.request("/api/search?q=perl");
  const body = await ok.json();
  assert.deepEqual(body.shards, [{ shard: 0, replica: 1, ms: 2, hits: 1 }]);
  assert.equal(body.mergeMs, 0.1);
});

Deno.test("uploads stream the body to the backend; bad names and empty files are refused", async () => {
  const { app: a } = app();
  const raw = { ...AS_PAGE, "content-type": "application/octet-stream" };
  const bad = await a.request("/api/gfs/upload?name=..%2Fetc", {
    method: "POST",
    body: "x",
    headers: raw,
  });
  assert.equal(bad.status, 400);
  await errorOf(bad);
  const empty = await a.request("/api/gfs/upload?name=a.txt", {
    method: "POST",
    body: "",
    headers: { ...raw, "content-length": "0" },
  });
  assert.equal(empty.status, 400);
  await errorOf(empty);
  const ok = await a.request("/api/gfs/upload?name=notes%20v2.txt", {
    method: "POST",
    body: new Uint8Array(5000),
    headers: raw,
  });
  assert.equal(ok.status, 201);
  assert.deepEqual(await ok.json(), {
    path: "/uploads/notes v2.txt",
    length: 5000,
    chunks: 1,
  });
});

Deno.test("simulation replay runs a scenario by seed, and a bad scenario or seed is a 400", async () => {
  const { app: a } = app();
  const list = await (await a.request("/api/sim/scenarios")).json();
  assert.ok(list.some((s: { name: string }) => s.name === "election"));
  const ok = await a.request("/api/sim/replay?scenario=election&seed=42");
  assert.equal(ok.status, 200);
  const t = await ok.json();
  assert.equal(t.seed, 42);
  assert.ok(t.steps.length > 0);
  // Replays run concurrently (each on its own simulated cluster) and
  // stay deterministic.
  const [x, y] = await Promise.all(
    [1, 2].map(async () =>
      await (await a.request("/api/sim/replay?scenario=partition&seed=3"))
        .json()
    ),
  );
  assert.deepEqual(x, y);
  // A pasted failing-test line names its own scenario and seed.
  const pasted = await (await a.request(
    `/api/sim/replay?scenario=election&seed=${
      encodeURIComponent(
        'replay: STRATA_SEED=7 deno test -A packages/sim/membership_sim_test.ts --filter "a learner"',
      )
    }`,
  )).json();
  assert.deepEqual([pasted.scenario, pasted.seed], ["membership", 7]);
  // A line from a test without a scenario runs the selected one, and says so.
  const lab = await (await a.request(
    `/api/sim/replay?scenario=election&seed=${
      encodeURIComponent(
        "replay: STRATA_SEED=5 deno test -A packages/sim/raft_lab_test.ts",
      )
    }`,
  )).json();
  assert.deepEqual([lab.scenario, lab.seed], ["election", 5]);
  assert.match(lab.note, /raft_lab_test\.ts has no replay scenario/);
  for (
    const q of [
      "scenario=election&seed=banana",
      "scenario=nope&seed=1",
      "scenario=election",
    ]
  ) {
    const res = await a.request(`/api/sim/replay?${q}`);
    assert.equal(res.status, 400, q);
    assert.equal((await errorOf(res)).code, "bad_request");
  }
});

Deno.test("a replicated simulation seed with a planted bug replays step by step, the violation marked; bad machines, seeds and bugs are a 400", async () => {
  const { app: a } = app();
  const bugs = await (await a.request("/api/sim/bugs")).json();
  assert.ok(bugs.includes("vote_before_fsync"));
  // vote_before_fsync: seed 7 fails (packages/sim/README.md), so find
  // stops at the first seed it runs.
  const res = await a.request(
    "/api/sim/replicated?machine=kv&bug=vote_before_fsync&seed=7&find=1",
  );
  assert.equal(res.status, 200);
  const r = await res.json();
  assert.equal(r.ok, false);
  assert.equal(r.seed, 7);
  assert.equal(
    r.command,
    "deno task sim:replicated --seed 7 --bug vote_before_fsync",
  );
  const kinds = new Set(r.steps.map((s: { kind: string }) => s.kind));
  for (const k of ["message", "tick", "leader", "op", "fail"]) {
    assert.ok(kinds.has(k), `a ${k} step`);
  }
  assert.ok(r.violationSteps.length > 0, "the violation is marked");
  for (const i of r.violationSteps) assert.equal(r.steps[i].violation, true);
  assert.equal(r.steps.at(-1).cluster.length, r.nodes.length);
  for (
    const q of [
      "machine=redis&seed=1",
      "seed=-1",
      "seed=banana",
      "bug=no_such_bug",
      "find=yes",
    ]
  ) {
    const bad = await a.request(`/api/sim/replicated?${q}`);
    assert.equal(bad.status, 400, q);
    assert.equal((await errorOf(bad)).code, "bad_request");
  }
});

Deno.test("rooms and time-series routes: subscribe, publish and write need the page token and check their input; the views are GETs", async () => {
  const { app: a, calls } = app();
  const post = (path: string, body: unknown, headers = AS_PAGE) =>
    a.request(path, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  const sub = await post("/api/tables/rooms/subscribe", {
    room: "lobby",
    server: "ts1",
  });
  assert.equal(sub.status, 200);
  assert.deepEqual(await sub.json(), { id: 1, room: "lobby", server: "ts1" });
  const pub = await post("/api/tables/rooms/publish", {
    room: "lobby",
    data: "hi",
  });
  assert.equal((await pub.json()).servers, 1);
  const ts = await post("/api/tables/timeseries/write", { series: "cpu" });
  assert.equal((await ts.json()).written, 100);
  assert.deepEqual(calls, [
    "subscribe lobby@ts1",
    "publish lobby hi via any",
    "series cpu 100 over 5000",
  ]);
  assert.deepEqual(await (await a.request("/api/tables/rooms")).json(), {
    rooms: [],
    latency: null,
  });
  const view = await a.request("/api/tables/timeseries?series=cpu");
  assert.equal((await view.json()).bucketMs, 1000);
  // No page token: 401, and nothing reaches the backend.
  const anon = await post("/api/tables/rooms/publish", {
    room: "lobby",
    data: "x",
  }, {} as typeof AS_PAGE);
  assert.equal(anon.status, 401);
  await anon.body?.cancel();
  const unknown = await post("/api/tables/rooms/subscribe", {
    room: "lobby",
    server: "ts9",
  });
  assert.equal(unknown.status, 404);
  await unknown.body?.cancel();
  for (
    const [path, body] of [
      ["/api/tables/rooms/subscribe", { room: "", server: "ts1" }],
      ["/api/tables/rooms/subscribe", { room: "a\nb", server: "ts1" }],
      ["/api/tables/rooms/subscribe", { room: "lobby" }],
      ["/api/tables/rooms/publish", { room: "lobby", data: "x".repeat(5000) }],
      ["/api/tables/rooms/publish", { room: "lobby", data: 7 }],
      ["/api/tables/timeseries/write", { series: "cpu", points: 0 }],
      ["/api/tables/timeseries/write", { series: "cpu", spanMs: 10 }],
      ["/api/tables/timeseries/write", { series: "" }],
    ] as const
  ) {
    const res = await post(path, body);
    assert.equal(res.status, 400, `${path} ${JSON.stringify(body)}`);
    assert.equal((await errorOf(res)).code, "bad_request");
  }
  const noSeries = await a.request("/api/tables/timeseries");
  assert.equal(noSeries.status, 400);
  await noSeries.body?.cancel();
  assert.equal(calls.length, 4, "no bad request reached the backend");
});

Deno.test("the report is served when rendered, else a page says how to make it", async () => {
  const missing = await app().app.request("/report");
  assert.equal(missing.status, 200);
  const text = await missing.text();
  assert.match(text, /deno task bench/);
  assert.match(text, /deno task report/);
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/index.html`,
      "<html><body>charts</body></html>",
    );
    const present = await app(`${dir}/index.html`).app.request("/report");
    assert.equal(await present.text(), "<html><body>charts</body></html>");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the stream sends the current snapshot at once, then each new one", async () => {
  const { app: a, publish } = app();
  const ac = new AbortController();
  const res = await a.request("/api/stream", { signal: ac.signal });
  assert.match(res.headers.get("content-type")!, /text\/event-stream/);
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const until = async (re: RegExp) => {
    for (let i = 0; i < 50 && !re.test(text); i++) {
      text += (await reader.read()).value ?? "";
    }
  };
  await until(/"at":1/);
  assert.match(text, /event: snapshot\ndata: \{"at":1,/);
  publish(snapshot(2));
  await until(/"at":2/);
  assert.match(text, /"at":2/);
  ac.abort();
  await reader.cancel().catch(() => {});
});

Deno.test("GFS master kill and restart: validated, 404 for an unknown master, 409 when refused", async () => {
  const { app: a, calls } = app();
  for (
    const path of ["/api/gfs/masters/3/kill", "/api/gfs/masters/9/restart"]
  ) {
    const res = await a.request(path, post(path, ""));
    assert.equal(res.status, 404, path);
    const e = await errorOf(res);
    assert.equal(e.code, "not_found");
    assert.match(e.message, /no GFS master \d; there are 3/);
  }
  assert.deepEqual(calls, [], "an unknown master never reaches the backend");

  const kill = await a.request("/api/gfs/masters/0/kill", post("", ""));
  assert.equal(kill.status, 200);
  assert.deepEqual(await kill.json(), { ok: true, index: 0, action: "kill" });
  const again = await a.request("/api/gfs/masters/2/kill", post("", ""));
  assert.equal(again.status, 409);
  const e = await errorOf(again);
  assert.equal(e.code, "conflict");
  assert.match(e.message, /already killed/);
  const running = await a.request("/api/gfs/masters/1/restart", post("", ""));
  assert.equal(running.status, 409);
  assert.match((await errorOf(running)).message, /kill it first/);
  const restart = await a.request("/api/gfs/masters/2/restart", post("", ""));
  assert.equal(restart.status, 200);
  assert.deepEqual(await restart.json(), {
    ok: true,
    index: 2,
    action: "restart",
  });
  assert.deepEqual(calls, [
    "master kill 0",
    "master kill 2",
    "master restart 1",
    "master restart 2",
  ]);
});

Deno.test("the page holds the run's token; actions need it, and a foreign Host or a cross-site page is refused", async () => {
  const { app: a, calls } = app();
  const page = await (await a.request("/")).text();
  assert.match(
    page,
    /<meta name="strata-page-token" content="page-token-for-this-test-run">/,
  );
  const kill = "/api/raft/nodes/1/kill";
  const before = calls.length;
  // No token (what a form on another site would send): 401.
  const bare = await a.request(kill, {
    method: "POST",
    headers: { "content-type": "application/json" },
  });
  assert.equal(bare.status, 401);
  // A text/plain "simple" POST never reaches the action.
  const simple = await a.request(kill, {
    method: "POST",
    body: "{}",
    headers: { ...AS_PAGE, "content-type": "text/plain" },
  });
  assert.equal(simple.status, 415);
  // Cross-site, even with the token.
  const cross = await a.request(kill, {
    method: "POST",
    headers: {
      ...AS_PAGE,
      origin: "http://evil.example",
      "sec-fetch-site": "cross-site",
    },
  });
  assert.equal(cross.status, 403);
  assert.equal((await errorOf(cross)).code, "cross_origin");
  // DNS rebinding: the attacker's name in Host, for the page and for actions.
  const rebound = await a.request("http://evil.example/", {
    headers: { host: "evil.example" },
  });
  assert.equal(rebound.status, 421);
  assert.equal((await errorOf(rebound)).code, "misdirected");
  const reboundKill = await a.request(`http://evil.example${kill}`, {
    method: "POST",
    headers: { host: "evil.example", ...AS_PAGE },
  });
  assert.equal(reboundKill.status, 421);
  assert.equal(calls.length, before, "no refused request reached the backend");
  // The page's own request works.
  const ok = await a.request(kill, post(kill, ""));
  assert.equal(ok.status, 200);
});

Deno.test("off loopback (operator tokens): every request needs a token, a browser is asked for it as a Basic password, actions still need the page's token", async () => {
  const fake = fakeBackend();
  const operator = { read: "r".repeat(32), admin: "a".repeat(32) };
  const a = createDashboardApp({
    backend: fake.backend,
    sim: createSimApi(),
    reportFile: "/nonexistent/report.html",
    pageToken: PAGE_TOKEN,
    hosts: ["10.1.2.3"],
    operatorTokens: operator,
  });
  const at = (path: string, init: RequestInit = {}) =>
    a.request(`http://10.1.2.3:8080${path}`, {
      ...init,
      headers: { host: "10.1.2.3:8080", ...init.headers },
    });
  const basic = (t: string) => ({ authorization: `Basic ${btoa(`me:${t}`)}` });
  // Nothing is public: the page, its files, the snapshot and the stream.
  for (const path of ["/", "/static/dashboard.js", "/api/snapshot"]) {
    const res = await at(path);
    assert.equal(res.status, 401, path);
    assert.match(res.headers.get("www-authenticate") ?? "", /^Basic /);
    await res.body?.cancel();
  }
  const wrong = await at("/", { headers: basic("not-the-token") });
  assert.equal(wrong.status, 401);
  await wrong.body?.cancel();
  // The browser's password (the read token) opens the page, without the
  // page token (else looking would be acting); the admin token's page has it.
  const page = await at("/", { headers: basic(operator.read) });
  assert.equal(page.status, 200);
  const readPage = await page.text();
  assert.match(readPage, /<head>/);
  assert.doesNotMatch(readPage, /page-token/);
  const adminPage = await at("/", { headers: basic(operator.admin) });
  assert.equal(adminPage.status, 200);
  assert.match(
    await adminPage.text(),
    /strata-page-token" content="page-token/,
  );
  const snap = await at("/api/snapshot", {
    headers: { authorization: `Bearer ${operator.read}` },
  });
  assert.equal(snap.status, 200);
  await snap.body?.cancel();
  // Looking is not acting: the read token cannot kill a node.
  const kill = "/api/raft/nodes/1/kill";
  const json = { "content-type": "application/json" };
  const before = fake.calls.length;
  const readKill = await at(kill, {
    method: "POST",
    headers: { ...json, ...basic(operator.read) },
  });
  assert.equal(readKill.status, 403);
  await readKill.body?.cancel();
  assert.equal(fake.calls.length, before);
  // The page's action (its token) and an operator with the admin token act.
  const pageKill = await at(kill, {
    method: "POST",
    headers: { ...json, ...AS_PAGE },
  });
  assert.equal(pageKill.status, 200);
  await pageKill.body?.cancel();
  const adminKill = await at(kill, {
    method: "POST",
    headers: { ...json, authorization: `Bearer ${operator.admin}` },
  });
  assert.equal(adminKill.status, 200);
  await adminKill.body?.cancel();
  assert.equal(fake.calls.length, before + 2);
  // A foreign Host is still refused before any token is looked at.
  const rebound = await a.request("http://evil.example/", {
    headers: { host: "evil.example", ...basic(operator.read) },
  });
  assert.equal(rebound.status, 421);
  await rebound.body?.cancel();
});

Deno.test("tables: kill and restart, split, follow and write a row; validated, 404 for unknown ids, 409 when refused, token needed", async () => {
  const { app: a, calls } = app();
  const at = (path: string, body = "") => a.request(path, post(path, body));

  for (
    const path of [
      "/api/tables/servers/ts9/kill",
      "/api/tables/masters/ts1/kill",
    ]
  ) {
    const res = await at(path);
    assert.equal(res.status, 404, path);
    assert.match((await errorOf(res)).message, /no tables (server|master)/);
  }
  const badKind = await at("/api/tables/chunkservers/ts1/kill");
  assert.equal(badKind.status, 400);
  const badAction = await at("/api/tables/servers/ts1/pause");
  assert.equal(badAction.status, 400);
  assert.deepEqual(calls, [], "refused before the backend");

  const kill = await at("/api/tables/servers/ts1/kill");
  assert.equal(kill.status, 200);
  assert.deepEqual(await kill.json(), {
    ok: true,
    kind: "server",
    id: "ts1",
    action: "kill",
  });
  const again = await at("/api/tables/servers/ts2/kill");
  assert.equal(again.status, 409);
  assert.equal((await errorOf(again)).code, "conflict");
  const master = await at("/api/tables/masters/m2/restart");
  assert.equal(master.status, 200);

  const split = await at("/api/tables/tablets/t1/split");
  assert.equal(split.status, 200);
  assert.deepEqual(await split.json(), { split: "t1", tablets: ["t2", "t3"] });
  const unknown = await at("/api/tables/tablets/nope/split");
  assert.equal(unknown.status, 404);

  for (
    const [body, field] of [
      [JSON.stringify({ table: "animals" }), /row/],
      [JSON.stringify({ table: "bad name!", row: "x" }), /table/],
      [JSON.stringify({ table: "animals", row: "" }), /row key is empty/],
      [JSON.stringify({ table: "a", row: "x", extra: 1 }), /extra/],
      ["{", /JSON/i],
    ] as const
  ) {
    const res = await at("/api/tables/follow", body);
    assert.equal(res.status, 400, body);
    assert.match((await errorOf(res)).message, field, body);
  }
  const follow = await at(
    "/api/tables/follow",
    JSON.stringify({ table: "animals", row: "koala" }),
  );
  assert.equal(follow.status, 200);

  const noColumn = await at(
    "/api/tables/write",
    JSON.stringify({ table: "animals", row: "koala", column: "x", value: "1" }),
  );
  assert.equal(noColumn.status, 400);
  assert.match((await errorOf(noColumn)).message, /family:qualifier/);
  const write = await at(
    "/api/tables/write",
    JSON.stringify({
      table: "animals",
      row: "koala",
      column: "info:legs",
      value: "4",
    }),
  );
  assert.equal(write.status, 200);
  assert.deepEqual(await write.json(), {
    table: "animals",
    row: "koala",
    tookMs: 2,
  });

  // Without the page's token nothing acts.
  const before = calls.length;
  const anon = await a.request("/api/tables/servers/ts1/kill", {
    method: "POST",
    headers: { "content-type": "application/json" },
  });
  assert.equal(anon.status, 401);
  assert.equal(calls.length, before);
  assert.deepEqual(calls, [
    "tables server kill ts1",
    "tables server kill ts2",
    "tables master restart m2",
    "split t1",
    "split nope",
    "follow row animals/koala",
    "write row animals/koala info:legs=4",
  ]);
});
