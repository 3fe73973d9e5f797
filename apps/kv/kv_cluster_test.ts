// Real-process tests of the replicated KV: three node processes on
// loopback, each with its own data directory, killed, paused and restarted
// under a write load. Every history is checked for linearizability and no
// acknowledged write may be lost.
import assert from "node:assert/strict";
import { checkKvHistory } from "@strata/sim";
import { selfSignedCert, tlsClient } from "@strata/edge";
import { KvClient, KvClientError } from "./client.ts";
import { OpRecorder } from "./_recorded_ops.ts";
import {
  type LocalCluster,
  reserveAddresses,
  startLocalCluster,
} from "./cluster_launcher.ts";

const TICK_MS = 20; // election timeout 10-20 ticks: 200-400 ms
const ELECTION_TIMEOUT_MS = 20 * TICK_MS;

async function withCluster(
  fn: (c: LocalCluster, dir: string) => Promise<void>,
  size = 3,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "strata-raft-test-" });
  const cluster = await startLocalCluster({
    size,
    dataRoot: dir,
    extraArgs: ["--tick-ms", String(TICK_MS)],
  });
  try {
    await fn(cluster, dir);
  } finally {
    await cluster.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

async function leaderOf(
  cluster: LocalCluster,
  timeoutMs = 10_000,
): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    for (const n of cluster.nodes.values()) {
      try {
        const res = await call(cluster, `http://${n.http}/v1/status`, {
          signal: AbortSignal.timeout(500),
        });
        const s = await res.json();
        if (s.role === "leader" && cluster.nodes.has(s.id)) return s.id;
      } catch { /* down or paused */ }
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error("no leader");
}

/** The cluster's admin token (the launcher generated it in the data root). */
function adminToken(cluster: LocalCluster): string {
  return cluster.secrets!.tokens.admin;
}

/** fetch with the cluster's admin token, as every caller of the API needs. */
function call(
  cluster: LocalCluster,
  url: string,
  init: RequestInit = {},
): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${adminToken(cluster)}`);
  return fetch(url, { ...init, headers });
}

function endpoints(cluster: LocalCluster): string[] {
  return [...cluster.nodes.values()].map((n) => n.http);
}

/** Concurrent clients writing and reading unique values; records a history. */
function startLoad(cluster: LocalCluster, clients: number, keys: number) {
  const rec = new OpRecorder();
  const history = rec.history;
  const acked = new Map<string, string>(); // key → last acknowledged value per writer order is not total, so keep all
  const ackedValues: Array<{ key: string; value: string }> = [];
  let running = true;
  const workers = Array.from({ length: clients }, async (_, c) => {
    const kv = new KvClient(endpoints(cluster), {
      token: adminToken(cluster),
      timeoutMs: 3000,
      attempts: 3,
    });
    let seq = 0;
    while (running) {
      const key = `k${(c * 7 + seq) % keys}`;
      const write = seq % 3 !== 2;
      if (write) {
        const value = `c${c}-${seq}`;
        if (await rec.put(c, kv, key, value)) {
          ackedValues.push({ key, value });
          acked.set(key, value);
        }
      } else {
        await rec.get(c, kv, key);
      }
      seq++;
    }
  });
  return {
    history,
    ackedValues,
    /** Waits until `n` more writes are acknowledged (bounded: fails after `timeoutMs`). */
    async moreAcks(n: number, timeoutMs = 20_000) {
      const target = ackedValues.length + n;
      const deadline = performance.now() + timeoutMs;
      while (ackedValues.length < target) {
        if (performance.now() > deadline) {
          throw new Error(
            `only ${ackedValues.length}/${target} writes acknowledged`,
          );
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async stop() {
      running = false;
      await Promise.all(workers);
    },
  };
}

/** Every acknowledged write must be visible: each key holds a value written to it, and the history is linearizable. */
async function checkNoAckedWriteLost(
  cluster: LocalCluster,
  load: ReturnType<typeof startLoad>,
) {
  const kv = new KvClient(endpoints(cluster), {
    token: adminToken(cluster),
    timeoutMs: 5000,
    attempts: 10,
  });
  const written = new Map<string, Set<string>>();
  for (const op of load.history) {
    if (op.input.op === "put") {
      const s = written.get(op.input.key) ?? new Set();
      s.add(op.input.value);
      written.set(op.input.key, s);
    }
  }
  const ackedKeys = new Set(load.ackedValues.map((a) => a.key));
  for (const key of ackedKeys) {
    const e = await kv.get(key);
    assert.ok(e, `acknowledged key ${key} is missing`);
    assert.ok(
      written.get(key)!.has(new TextDecoder().decode(e.value)),
      `key ${key} holds a value never written`,
    );
  }
  const result = checkKvHistory(load.history, { timeoutMs: 20_000 });
  assert.notEqual(
    result.result,
    "illegal",
    `history not linearizable: ${result.info}`,
  );
}

Deno.test("kill -9 of the leader under load: a new leader soon, no acknowledged write lost, the old leader catches up", async () => {
  await withCluster(async (cluster) => {
    const first = await leaderOf(cluster);
    const load = startLoad(cluster, 6, 20);
    await load.moreAcks(20);
    const killedAt = performance.now();
    await cluster.kill(first);
    const next = await leaderOf(cluster);
    const failoverMs = performance.now() - killedAt;
    assert.notEqual(next, first);
    // Two election timeouts, plus slack for a busy 2-core machine.
    assert.ok(
      failoverMs < 2 * ELECTION_TIMEOUT_MS + 2000,
      `new leader after ${failoverMs.toFixed(0)} ms`,
    );
    console.log(
      `  new leader ${next} ${
        failoverMs.toFixed(0)
      } ms after kill -9 of ${first}`,
    );
    await load.moreAcks(20);
    await cluster.restart(first);
    await load.moreAcks(10);
    await load.stop();
    await checkNoAckedWriteLost(cluster, load);
    // The restarted node catches up to the leader's commit index.
    const leaderStatus = await (await call(
      cluster,
      `http://${cluster.nodes.get(next)!.http}/v1/status`,
    ))
      .json();
    const deadline = performance.now() + 10_000;
    for (;;) {
      const s = await (await call(
        cluster,
        `http://${cluster.nodes.get(first)!.http}/v1/status`,
      )).json();
      if (s.appliedIndex >= leaderStatus.commitIndex) break;
      if (performance.now() > deadline) {
        assert.fail(
          `node ${first} stuck at ${s.appliedIndex} < ${leaderStatus.commitIndex}`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  });
});

Deno.test("a paused node, a paused leader and a restart of all three at once lose no acknowledged write", async () => {
  await withCluster(async (cluster) => {
    const load = startLoad(cluster, 4, 10);
    await load.moreAcks(10);
    // A follower frozen with SIGSTOP, then resumed.
    const leader = await leaderOf(cluster);
    const follower = [...cluster.nodes.keys()].find((id) => id !== leader)!;
    cluster.signal(follower, "SIGSTOP");
    await new Promise((r) => setTimeout(r, 800));
    cluster.signal(follower, "SIGCONT");
    await load.moreAcks(5);
    // The leader isolated (paused) long enough for the others to elect.
    const l2 = await leaderOf(cluster);
    cluster.signal(l2, "SIGSTOP");
    await new Promise((r) => setTimeout(r, 4 * ELECTION_TIMEOUT_MS + 500));
    cluster.signal(l2, "SIGCONT");
    await load.moreAcks(5);
    await load.stop();
    // Everyone down at once, then up again on the same data.
    const ids = [...cluster.nodes.keys()];
    await Promise.all(ids.map((id) => cluster.kill(id)));
    await Promise.all(ids.map((id) => cluster.restart(id)));
    await leaderOf(cluster);
    await checkNoAckedWriteLost(cluster, load);
  });
});

/**
 * Sends a membership change to the current leader, as a client would:
 * on 503 (no leader yet) or a redirect (leadership moved), it finds the
 * leader again and retries, for up to 15 s.
 */
async function changeMembers(
  cluster: LocalCluster,
  body: Record<string, unknown>,
): Promise<{ leader: number; members: Array<{ id: number; role: string }> }> {
  const deadline = performance.now() + 15_000;
  for (;;) {
    const leader = await leaderOf(cluster);
    const res = await call(
      cluster,
      `http://${cluster.nodes.get(leader)!.http}/v1/cluster/members`,
      {
        method: "POST",
        body: JSON.stringify(body),
        redirect: "manual",
        headers: { "content-type": "application/json" },
      },
    );
    const text = await res.text();
    if (res.status === 200) {
      return { leader, members: JSON.parse(text).members };
    }
    const retry = res.status === 503 || (res.status >= 300 && res.status < 400);
    if (!retry || performance.now() > deadline) {
      assert.fail(`${JSON.stringify(body)}: ${res.status} ${text}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

Deno.test("membership under load: add a learner, promote it, remove an old voter", async () => {
  await withCluster(async (cluster) => {
    const load = startLoad(cluster, 3, 10);
    const addr = await reserveAddresses();
    await changeMembers(cluster, {
      action: "add",
      id: 4,
      peerAddress: addr.peer,
      httpAddress: addr.http,
    });
    const joined = await cluster.join(4, addr);
    // The learner catches up.
    const deadline = performance.now() + 15_000;
    for (;;) {
      const s = await (await call(cluster, `http://${joined.http}/v1/status`))
        .json();
      const leader = await leaderOf(cluster);
      const l = await (await call(
        cluster,
        `http://${cluster.nodes.get(leader)!.http}/v1/status`,
      )).json();
      if (s.appliedIndex > 0 && s.appliedIndex >= l.commitIndex - 5) break;
      if (performance.now() > deadline) {
        assert.fail(`learner stuck at ${s.appliedIndex}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    await changeMembers(cluster, { action: "promote", id: 4 });
    const leader = await leaderOf(cluster);
    const victim = [...cluster.nodes.keys()].find((id) =>
      id !== leader && id !== 4
    )!;
    const { members } = await changeMembers(cluster, {
      action: "remove",
      id: victim,
    });
    assert.deepEqual(
      members.map((m) => [m.id, m.role]).sort(),
      [...cluster.nodes.keys()].filter((id) => id !== victim).map((id) => [
        id,
        "voter",
      ]).sort(),
    );
    await cluster.kill(victim);
    await load.moreAcks(5);
    await load.stop();
    await checkNoAckedWriteLost(cluster, load);
  });
});

Deno.test("snapshots: a follower that missed compacted entries catches up through InstallSnapshot", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-raft-snap-" });
  const cluster = await startLocalCluster({
    size: 3,
    dataRoot: dir,
    extraArgs: ["--tick-ms", String(TICK_MS), "--snapshot-entries", "200"],
  });
  try {
    const leader = await leaderOf(cluster);
    const lagger = [...cluster.nodes.keys()].find((id) => id !== leader)!;
    await cluster.kill(lagger);
    const kv = new KvClient(endpoints(cluster), {
      timeoutMs: 5000,
      token: adminToken(cluster),
    });
    // Each key has one writer and one value, so re-sending a put whose
    // outcome is unknown (a timeout on a loaded machine) is safe here.
    const put = async (key: string, value: string) => {
      for (let attempt = 1;; attempt++) {
        try {
          return await kv.put(key, value);
        } catch (e) {
          const unknown = e instanceof KvClientError &&
            e.code === "unknown_outcome";
          if (!unknown || attempt >= 5) throw e;
        }
      }
    };
    // Enough writes for two snapshots and a compaction past what the lagger has.
    for (let batch = 0; batch < 30; batch++) {
      await Promise.all(
        Array.from(
          { length: 50 },
          (_, i) => put(`s/${batch * 50 + i}`, `v${batch * 50 + i}`),
        ),
      );
    }
    const ls = await (await call(
      cluster,
      `http://${cluster.nodes.get(leader)!.http}/v1/status`,
    ))
      .json();
    assert.ok(ls.snapshotIndex > 0, "the leader took a snapshot");
    assert.ok(ls.firstIndex > 1, "the leader compacted its log");
    await cluster.restart(lagger);
    const deadline = performance.now() + 20_000;
    for (;;) {
      const s = await (await call(
        cluster,
        `http://${cluster.nodes.get(lagger)!.http}/v1/status`,
      )).json();
      if (s.appliedIndex >= ls.commitIndex) {
        assert.ok(s.snapshotIndex > 0, "the lagger installed a snapshot");
        break;
      }
      if (performance.now() > deadline) {
        assert.fail(`lagger stuck at ${s.appliedIndex} < ${ls.commitIndex}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    const stale = await call(
      cluster,
      `http://${
        cluster.nodes.get(lagger)!.http
      }/v1/kv/s/1499?consistency=stale`,
    );
    assert.equal((await stale.json()).value, "v1499");
  } finally {
    await cluster.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

// One cluster for the checks that do not disturb it (each cluster start is
// seconds of the suite's time).
Deno.test("a node process: bad input gets 4xx JSON, the CLI works against live nodes, every route class asks for a token with the right role", async (t) => {
  await withCluster(async (cluster) => {
    await t.step(
      "bad input gets 4xx JSON and the node keeps serving",
      async () => {
        await leaderOf(cluster);
        const base = `http://${[...cluster.nodes.values()][0]!.http}`;
        const bad: Array<[string, string, BodyInit | undefined, number]> = [
          ["PUT", "/v1/kv/%C3%28", "x", 400],
          ["PUT", "/v1/kv/a%zz", "x", 400],
          ["GET", "/v1/kv?prefix=%", undefined, 400],
          ["PUT", `/v1/kv/${"k".repeat(2000)}`, "x", 400],
          ["PUT", "/v1/kv/big", "x".repeat(2 << 20), 413],
          ["POST", "/v1/txn", "{not json", 400],
          ["POST", "/v1/sessions", JSON.stringify({ ttlMs: "soon" }), 400],
          [
            "POST",
            "/v1/cluster/members",
            JSON.stringify({ action: "add", id: 9 }),
            400,
          ],
        ];
        for (const [method, path, body, status] of bad) {
          const headers: Record<string, string> = method === "POST"
            ? { "content-type": "application/json" }
            : {};
          const res = await call(cluster, base + path, {
            method,
            body,
            headers,
          });
          const json = await res.json();
          assert.equal(
            res.status,
            status,
            `${method} ${path.slice(0, 40)}: ${JSON.stringify(json)}`,
          );
          assert.equal(typeof json.error.code, "string");
        }
        const simple = await call(
          cluster,
          `${base}/v1/cluster/transfer-leadership`,
          {
            method: "POST",
            body: "{}",
            headers: { "content-type": "text/plain" },
          },
        );
        assert.equal(simple.status, 415);
        await simple.body?.cancel();
        // Still serving: a write through this node succeeds (on a loaded
        // machine an election may be under way: 503 "no leader" for a while).
        let status = 0;
        const deadline = performance.now() + 15_000;
        while (status !== 200 && performance.now() < deadline) {
          const ok = await call(cluster, `${base}/v1/kv/still`, {
            method: "PUT",
            body: "serving",
          });
          status = ok.status;
          await ok.body?.cancel();
          if (status === 503) await new Promise((r) => setTimeout(r, 200));
          else break;
        }
        assert.equal(status, 200);
      },
    );
    await t.step(
      "the CLI puts, gets, scans, deletes and reports status",
      async () => {
        await leaderOf(cluster);
        const cli = new URL("./cli.ts", import.meta.url).pathname;
        const run = async (...args: string[]) => {
          const out = await new Deno.Command(Deno.execPath(), {
            args: [
              "run",
              "-A",
              cli,
              "--endpoints",
              endpoints(cluster).join(","),
              "--token-file",
              `${cluster.secrets!.dir}/admin.token`,
              ...args,
            ],
            stdout: "piped",
            stderr: "piped",
          }).output();
          return {
            code: out.code,
            stdout: new TextDecoder().decode(out.stdout),
            stderr: new TextDecoder().decode(out.stderr),
          };
        };
        // Commands that do not depend on each other run together (each is
        // a process start).
        const [put, putB, statusRun, bad] = await Promise.all([
          run("put", "cli/a", "hello"),
          run("put", "cli/b", "world"),
          run("status"),
          run("frobnicate"),
        ]);
        assert.equal(put.code, 0, put.stderr);
        assert.equal(putB.code, 0, putB.stderr);
        assert.ok(JSON.parse(put.stdout).revision > 0);
        const [get, scanRun] = await Promise.all([
          run("get", "cli/a"),
          run("scan", "cli/"),
        ]);
        assert.equal(JSON.parse(get.stdout).value, "hello");
        const scan = scanRun.stdout.trim().split("\n").map((l) =>
          JSON.parse(l).key
        );
        assert.deepEqual(scan, ["cli/a", "cli/b"]);
        assert.equal(
          JSON.parse((await run("del", "cli/a")).stdout).deleted,
          true,
        );
        const missing = await run("get", "cli/a");
        assert.equal(missing.code, 1);
        assert.match(missing.stderr, /not found/);
        const status = statusRun.stdout.trim().split("\n").map((l) =>
          JSON.parse(l)
        );
        assert.equal(status.length, 3);
        assert.equal(status.filter((s) => s.role === "leader").length, 1);
        assert.equal(bad.code, 2);
      },
    );
    await t.step(
      "every route class asks for a token with the right role",
      async () => {
        let base = `http://${cluster.nodes.get(await leaderOf(cluster))!.http}`;
        const t = cluster.secrets!.tokens;
        const send = async (
          token: string | undefined,
          method: string,
          path: string,
          body?: unknown,
        ) => {
          const res = await fetch(base + path, {
            method,
            headers: {
              ...(token ? { authorization: `Bearer ${token}` } : {}),
              ...(body !== undefined
                ? { "content-type": "application/json" }
                : {}),
            },
            body: body === undefined ? undefined : JSON.stringify(body),
          });
          await res.body?.cancel();
          return res.status;
        };
        // read: GET; write: PUT; admin: leadership transfer.
        assert.equal(await send(undefined, "GET", "/v1/status"), 401);
        assert.equal(await send(t.read, "GET", "/v1/status"), 200);
        assert.equal(
          await send(undefined, "PUT", "/v1/kv/r", { value: "v" }),
          401,
        );
        assert.equal(
          await send(t.read, "PUT", "/v1/kv/r", { value: "v" }),
          403,
        );
        assert.equal(
          await send(t.write, "PUT", "/v1/kv/r", { value: "v" }),
          200,
        );
        const transfer = "/v1/cluster/transfer-leadership";
        assert.equal(await send(undefined, "POST", transfer, {}), 401);
        assert.equal(await send(t.write, "POST", transfer, {}), 403);
        // On a loaded machine the leader can change under the test (a transfer
        // to a non-leader is a 503): ask the current leader again, a few times.
        let status = 0;
        for (let i = 0; i < 5 && status !== 200; i++) {
          base = `http://${cluster.nodes.get(await leaderOf(cluster))!.http}`;
          status = await send(t.admin, "POST", transfer, {});
        }
        assert.equal(status, 200);
        // The secrets are the launcher's files, private to their owner.
        for (
          const f of ["admin.token", "write.token", "read.token", "peer.secret"]
        ) {
          const mode = (await Deno.stat(`${cluster.secrets!.dir}/${f}`)).mode!;
          assert.equal(mode & 0o777, 0o600, f);
        }
      },
    );
  });
});

Deno.test("a node with another cluster's peer secret is refused in the handshake, with a clear log line", async () => {
  await withCluster(async (cluster, dir) => {
    const addr = reserveAddresses();
    await changeMembers(cluster, {
      action: "add",
      id: 4,
      peerAddress: addr.peer,
      httpAddress: addr.http,
    });
    // Node 4 generates its own secrets: its peer secret is not the cluster's.
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("./node_main.ts", import.meta.url).pathname,
        "--id",
        "4",
        "--join",
        "--peers",
        cluster.peers,
        "--listen",
        addr.peer,
        "--http",
        addr.http,
        "--data-dir",
        `${dir}/node-4`,
        "--auth-dir",
        `${dir}/other-cluster`,
        "--tick-ms",
        String(TICK_MS),
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    try {
      const reader = child.stderr.pipeThrough(new TextDecoderStream())
        .getReader();
      let log = "";
      const deadline = performance.now() + 20_000;
      // One read in flight at a time, so no chunk is lost to the timer.
      let pending = reader.read();
      while (
        !/refused a raft peer connection from .*shared secret is wrong/.test(
          log,
        ) && performance.now() < deadline
      ) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const chunk = await Promise.race([
          pending,
          new Promise<undefined>((r) => {
            timer = setTimeout(() => r(undefined), 1000);
          }),
        ]);
        clearTimeout(timer);
        if (chunk === undefined) continue;
        if (chunk.done) break;
        log += chunk.value;
        pending = reader.read();
      }
      assert.match(
        log,
        /refused a raft peer connection from .*shared secret is wrong.*same peer secret/,
      );
      assert.doesNotMatch(log, new RegExp(cluster.secrets!.peerSecret));
      // Nothing got through: node 4 never learned a single entry.
      const other =
        (await Deno.readTextFile(`${dir}/other-cluster/admin.token`))
          .trim();
      const res = await fetch(`http://${addr.http}/v1/status`, {
        headers: { authorization: `Bearer ${other}` },
      });
      const status = await res.json();
      assert.equal(status.commitIndex, 0);
    } finally {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.status;
    }
  });
});

/** Reads a child's stderr until `pattern` matches or `ms` pass; returns what it read. */
async function readLogUntil(
  child: Deno.ChildProcess,
  pattern: RegExp,
  ms: number,
): Promise<string> {
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let log = "";
  const deadline = performance.now() + ms;
  // One read in flight at a time, so no chunk is lost to the timer.
  let pending = reader.read();
  while (!pattern.test(log) && performance.now() < deadline) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const chunk = await Promise.race([
      pending,
      new Promise<undefined>((r) => {
        timer = setTimeout(() => r(undefined), 1000);
      }),
    ]);
    clearTimeout(timer);
    if (chunk === undefined) continue;
    if (chunk.done) break;
    log += chunk.value;
    pending = reader.read();
  }
  return log;
}

/** POST /v1/cluster/members over HTTPS, retrying until the leader takes it. */
async function changeMembersTls(
  cluster: LocalCluster,
  client: Deno.HttpClient,
  body: Record<string, unknown>,
): Promise<void> {
  const deadline = performance.now() + 15_000;
  for (;;) {
    for (const n of cluster.nodes.values()) {
      const res = await fetch(`${n.url}/v1/cluster/members`, {
        method: "POST",
        body: JSON.stringify(body),
        redirect: "manual",
        client,
        headers: {
          "content-type": "application/json",
          authorization: `Bearer ${adminToken(cluster)}`,
        },
      });
      const text = await res.text();
      if (res.status === 200) return;
      const retry = res.status === 503 || res.status === 421 ||
        (res.status >= 300 && res.status < 400);
      if (!retry || performance.now() > deadline) {
        assert.fail(`${JSON.stringify(body)}: ${res.status} ${text}`);
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

Deno.test("a cluster over TLS (HTTP and raft peers) with a self-signed certificate works end to end; peers without TLS or with an untrusted certificate are refused with a clear log line", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-kv-tls-" });
  const tls = await selfSignedCert(dir);
  const cluster = await startLocalCluster({
    size: 3,
    dataRoot: `${dir}/data`,
    extraArgs: ["--tick-ms", String(TICK_MS)],
    tls,
  });
  const httpClient = await tlsClient(tls.certFile);
  try {
    const urls = [...cluster.nodes.values()].map((n) => n.url);
    assert.ok(urls.every((u) => u.startsWith("https://")));
    const kv = new KvClient(urls, {
      token: adminToken(cluster),
      httpClient,
      // Generous: the first write right after start waits for an election
      // and TLS handshakes, and a timed-out write is not re-sent.
      timeoutMs: 15_000,
      attempts: 20,
    });
    // A linearizable read first, which the client retries: it answers once
    // a leader can commit, so the write (never re-sent) does not spend
    // the node's own 5 s request deadline on the election (it did once in
    // a full suite on 2 cores).
    assert.equal(await kv.get("tls/k"), undefined);
    const rev = await kv.put("tls/k", "secret value");
    assert.ok(rev > 0);
    assert.equal(
      new TextDecoder().decode((await kv.get("tls/k"))!.value),
      "secret value",
    );
    // Plain HTTP to a TLS listener gets no answer.
    await assert.rejects(
      fetch(`http://${cluster.nodes.get(1)!.http}/v1/status`, {
        signal: AbortSignal.timeout(5000),
      }).then((r) => r.text()),
    );
    // The raft peer port speaks TLS with the same certificate.
    const [peerHost, peerPort] = cluster.nodes.get(1)!.peer.split(":");
    const peerTls = await Deno.connectTls({
      hostname: peerHost,
      port: Number(peerPort),
      caCerts: [await Deno.readTextFile(tls.certFile)],
    });
    await peerTls.handshake();
    peerTls.close();

    // Two more members that cannot join: node 4 has TLS with a certificate
    // the cluster does not trust, node 5 no TLS at all. Both have the right
    // peer secret, so TLS is the only thing wrong; each says so in its log.
    await Deno.mkdir(`${dir}/other`);
    const otherTls = await selfSignedCert(`${dir}/other`);
    for (
      const [id, nodeTls, expected] of [
        [
          4,
          otherTls,
          /refused a raft peer connection from .*: TLS handshake with .* failed: .*every node needs TLS/,
        ],
        [
          5,
          undefined,
          /refused a raft peer connection from .*speaks TLS but this side of the connection does not.*every node needs TLS/,
        ],
      ] as const
    ) {
      const addr = reserveAddresses();
      await changeMembersTls(cluster, httpClient, {
        action: "add",
        id,
        peerAddress: addr.peer,
        httpAddress: addr.http,
      });
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          new URL("./node_main.ts", import.meta.url).pathname,
          "--id",
          String(id),
          "--join",
          "--peers",
          cluster.peers,
          "--listen",
          addr.peer,
          "--http",
          addr.http,
          "--data-dir",
          `${dir}/node-${id}`,
          "--auth-dir",
          cluster.secrets!.dir,
          "--tick-ms",
          String(TICK_MS),
          ...(nodeTls
            ? ["--tls-cert", nodeTls.certFile, "--tls-key", nodeTls.keyFile]
            : []),
        ],
        stdout: "null",
        stderr: "piped",
      }).spawn();
      try {
        const log = await readLogUntil(child, expected, 20_000);
        assert.match(log, expected);
        assert.doesNotMatch(log, new RegExp(cluster.secrets!.peerSecret));
        // Nothing got through: the node never learned a single entry.
        const client = nodeTls ? await tlsClient(nodeTls.certFile) : undefined;
        try {
          const res = await fetch(
            `${nodeTls ? "https" : "http"}://${addr.http}/v1/status`,
            {
              headers: { authorization: `Bearer ${adminToken(cluster)}` },
              client,
            },
          );
          assert.equal((await res.json()).commitIndex, 0);
        } finally {
          client?.close();
        }
      } finally {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
        await child.status;
      }
    }
  } finally {
    httpClient.close();
    await cluster.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("a node refuses to serve without auth off loopback, and says so", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-kv-noauth-" });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("./node_main.ts", import.meta.url).pathname,
        "--id",
        "1",
        "--peers",
        "1=127.0.0.1:0",
        "--data-dir",
        `${dir}/node-1`,
        "--http",
        "0.0.0.0:0",
        "--insecure-no-auth",
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 2, stderr);
    assert.match(
      stderr,
      /refusing to listen on 0\.0\.0\.0 without auth: --insecure-no-auth is only allowed on a loopback address/,
    );
    assert.equal(new TextDecoder().decode(out.stdout), "", "no ready line");
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
