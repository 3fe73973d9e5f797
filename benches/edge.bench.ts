/**
 * bench:edge — the cost of the edge: strata raft-kv put throughput (3
 * node processes, fsync on) at 16 and 256 concurrent clients with auth
 * off (`--insecure-no-auth`), auth on (bearer tokens, the default), and
 * auth on over TLS (self-signed certificate), in one run. The three
 * clusters run side by side and their measurements are interleaved
 * (off, on, TLS, off, on, TLS …) in short rounds, and each figure is the
 * median over the rounds, so a burst of load from other processes on the
 * shared machine colours all three alike and one bad round does not
 * decide a ratio.
 *
 * Goals: auth costs under 5% of throughput (on ÷ off ≥ 0.95), TLS under
 * 15% (TLS ÷ on ≥ 0.85). Since a put's time is mostly fsync and the
 * network, the suite also times the guard alone in process (a Hono app
 * with and without it, no network), which shows its CPU cost directly.
 */
import { Hono } from "hono";
import {
  edgeGuard,
  installErrorHandlers,
  LOOPBACK_NAMES,
  requireRole,
  selfSignedCert,
  tlsClient,
  TokenAuth,
} from "@strata/edge";
import {
  type LocalCluster,
  startLocalCluster,
} from "@strata/kv/cluster_launcher";
import { QUICK, Suite } from "./harness.ts";
import { type LoadResult, runLoad } from "./http_load.ts";

const suite = new Suite(
  "edge",
  "cost of the edge: strata raft-kv puts with auth off, auth on, and auth on over TLS",
);
const DURATION_MS = QUICK ? 500 : 2000;
const ROUNDS = QUICK ? 1 : 5;
const CONCURRENCY = [16, 256];
const KEYS = 10_000;
const value = new Uint8Array(256).fill(0x61);
const key8 = (n: number) => `k${String(n % KEYS).padStart(7, "0")}`;

interface Target {
  name: string;
  cluster: LocalCluster;
  urls: string[];
  headers: Record<string, string>;
  client?: Deno.HttpClient;
}

// --- in process: the guard's own cost per request ---
const TOKEN = "t".repeat(43);
const bare = new Hono();
bare.put("/v1/kv/:key", (c) => c.json({ ok: true }));
const guarded = new Hono();
guarded.use(
  "*",
  edgeGuard({ auth: new TokenAuth({ write: TOKEN }), hosts: LOOPBACK_NAMES }),
);
guarded.put("/v1/kv/:key", requireRole("write"), (c) => c.json({ ok: true }));
installErrorHandlers(guarded, { name: "bench" });
const request = () =>
  new Request("http://127.0.0.1:2380/v1/kv/k0000001", {
    method: "PUT",
    headers: { host: "127.0.0.1:2380", authorization: `Bearer ${TOKEN}` },
  });
const inProcess = "one request in process (no network)";
const plainRun = await suite.bench(
  inProcess,
  "no edge",
  async () => await bare.fetch(request()),
);
const guardRun = await suite.bench(
  inProcess,
  "edge guard + token",
  async () => {
    const res = await guarded.fetch(request());
    if (res.status !== 200) throw new Error(`guarded: ${res.status}`);
  },
);
// Medians: on a shared machine the means carry other processes' pauses.
suite.compare(
  `${inProcess}: median time edge guard ÷ no edge`,
  "time",
  guardRun.p50Ns,
  plainRun.p50Ns,
);

const root = await Deno.makeTempDir({ prefix: "strata-bench-edge-" });
const tls = await selfSignedCert(root);
const targets: Target[] = [];
try {
  for (
    const [name, opts] of [
      ["auth off", { insecureNoAuth: true }],
      ["auth on", {}],
      ["auth on + TLS", { tls }],
    ] as const
  ) {
    console.log(`starting a 3-node cluster: ${name}…`);
    const cluster = await startLocalCluster({
      size: 3,
      dataRoot: `${root}/${name.replaceAll(/\W+/g, "-")}`,
      ...opts,
    });
    targets.push({
      name,
      cluster,
      urls: [...cluster.nodes.values()].map((n) => n.url),
      headers: cluster.secrets
        ? { authorization: `Bearer ${cluster.secrets.tokens.write}` }
        : {},
      client: "tls" in opts ? await tlsClient(tls.certFile) : undefined,
    });
  }
  const put = async (t: Target, w: number, k: string) => {
    const res = await fetch(`${t.urls[w % 3]}/v1/kv/${k}`, {
      method: "PUT",
      body: value,
      headers: t.headers,
      ...(t.client ? { client: t.client } : {}),
    });
    await res.body?.cancel();
    return res.ok;
  };
  for (const t of targets) {
    // Wait for a leader, then check the token and TLS work (a run of
    // failures would measure nothing).
    let ok = false;
    for (let i = 0; i < 400 && !ok; i++) {
      ok = await put(t, 0, "warmup").catch(() => false);
      if (!ok) await new Promise((r) => setTimeout(r, 50));
    }
    if (!ok) throw new Error(`${t.name}: the cluster never took a put`);
  }
  for (const c of CONCURRENCY) {
    const runs = new Map<string, LoadResult[]>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const t of targets) {
        const r = await runLoad(
          c,
          DURATION_MS,
          (w, s) => put(t, w, key8(w * 7919 + s)),
        );
        runs.set(t.name, [...(runs.get(t.name) ?? []), r]);
      }
    }
    for (const t of targets) {
      const rs = runs.get(t.name)!;
      // Median over the rounds (a round with no completion has NaN latencies).
      const median = (f: (r: LoadResult) => number) => {
        const xs = rs.map(f).filter((x) => !Number.isNaN(x)).sort((a, b) =>
          a - b
        );
        return xs.length === 0 ? NaN : xs[xs.length >> 1]!;
      };
      const errors = rs.reduce((s, r) => s + r.errors, 0);
      suite.record({
        group: `put ×${c} clients`,
        name: t.name,
        opsPerSec: median((r) => r.opsPerSec),
        meanNs: median((r) => r.meanNs),
        p50Ns: median((r) => r.p50Ns),
        p99Ns: median((r) => r.p99Ns),
        samples: rs.reduce((s, r) => s + r.completed, 0),
      });
      if (errors > 0) console.log(`    (${t.name}: ${errors} failed requests)`);
    }
    const g = `put ×${c} clients`;
    const off = suite.get(g, "auth off");
    const on = suite.get(g, "auth on");
    const tlsOn = suite.get(g, "auth on + TLS");
    suite.compare(
      `${g}: throughput auth on ÷ auth off`,
      "throughput",
      on.opsPerSec,
      off.opsPerSec,
      { op: ">=", value: 0.95 },
    );
    suite.compare(
      `${g}: throughput TLS ÷ auth on`,
      "throughput",
      tlsOn.opsPerSec,
      on.opsPerSec,
      { op: ">=", value: 0.85 },
    );
  }
} finally {
  for (const t of targets) {
    t.client?.close();
    await t.cluster.stop();
  }
  await Deno.remove(root, { recursive: true }).catch(() => {});
}
await suite.finish();
