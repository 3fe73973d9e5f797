/**
 * bench:relay — multi-site relaying in apps/kv, measured over real node
 * processes: 5 members in two sites (a: 1, 2, 3; b: 4, 5), once started
 * with `--relay on` and once with `--relay off`, each under the same
 * closed-loop HTTP put load (256 random bytes per value) sent to the leader;
 * the on and off clusters alternate (on/off, off/on, on/off: `ROUNDS`
 * each), so a change in the shared machine's load hits both; bytes are
 * averaged over the rounds, latency is the median of the rounds' p50s.
 *
 * Two placements per cluster: the leader moved to node 4 (site b, so the
 * remote site a has 3 followers) and to node 1 (site a; remote site b has
 * 2). Bytes are counted where they leave each process
 * (`strata_raft_cross_site_bytes_total` on every member's /metrics: wire
 * bytes sent to a peer of another site), and divided by the entries
 * committed meanwhile (the leader's commit index).
 *
 * Goals: with relaying, the leader's appends cost close to one copy per
 * remote site per entry (≤ 1.25 copies, a copy being what one follower's
 * appends cost without relaying), and commit latency (put p50) at most
 * 1.5x that without relaying.
 */
import { startLocalCluster } from "@strata/kv/cluster_launcher";
import type { LocalCluster } from "@strata/kv/cluster_launcher";
import { QUICK, Suite } from "./harness.ts";
import { loadBenchResult, runLoad } from "./http_load.ts";

const suite = new Suite(
  "relay",
  "kv multi-site relay: cross-site bytes per committed entry and put latency, relaying on vs off (5 processes, sites 3+2)",
);
const DURATION_MS = QUICK ? 800 : 4000;
const CLIENTS = 16;
const SITES: Record<number, string> = {
  1: "a",
  2: "a",
  3: "a",
  4: "b",
  5: "b",
};
const ROUNDS = QUICK ? 1 : 3;
// Random bytes: packing must not win by compressing the values themselves
// (repeated or text bytes would shrink below one copy), only by sharing them.
const values = Array.from(
  { length: 1024 },
  () => crypto.getRandomValues(new Uint8Array(256)),
);

function auth(cluster: LocalCluster, role: "admin" | "write" | "read") {
  return { authorization: `Bearer ${cluster.secrets!.tokens[role]}` };
}

async function status(cluster: LocalCluster, id: number) {
  const res = await fetch(`${cluster.nodes.get(id)!.url}/v1/status`, {
    headers: auth(cluster, "read"),
  });
  return await res.json() as { role: string; commitIndex: number };
}

/** Moves leadership to `to` (bounded). */
async function lead(cluster: LocalCluster, to: number): Promise<void> {
  const deadline = performance.now() + 30_000;
  while ((await status(cluster, to)).role !== "leader") {
    if (performance.now() > deadline) throw new Error(`node ${to} never led`);
    for (const id of cluster.nodes.keys()) {
      const s = await status(cluster, id).catch(() => undefined);
      if (s?.role !== "leader") continue;
      await fetch(
        `${cluster.nodes.get(id)!.url}/v1/cluster/transfer-leadership`,
        {
          method: "POST",
          headers: {
            ...auth(cluster, "admin"),
            "content-type": "application/json",
          },
          body: JSON.stringify({ to }),
        },
      ).then((r) => r.body?.cancel());
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Cross-site bytes sent by every member, summed by message type, and the
 * relay counters (batches sent, fallbacks to direct), summed too.
 */
async function crossSiteBytes(
  cluster: LocalCluster,
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const add = (k: string, v: number) => out.set(k, (out.get(k) ?? 0) + v);
  for (const n of cluster.nodes.values()) {
    const text = await (await fetch(`${n.url}/metrics`, {
      headers: auth(cluster, "read"),
    })).text();
    for (const line of text.split("\n")) {
      const m = /^strata_raft_cross_site_bytes_total\{type="([^"]+)"\} (\S+)$/
        .exec(line);
      if (m) add(m[1]!, Number(m[2]));
      const c = /^strata_raft_relay_(batches_sent|fallbacks)_total (\S+)$/
        .exec(line);
      if (c) add(`#${c[1]}`, Number(c[2]));
    }
  }
  return out;
}

/** Bytes per committed entry while `to` leads under the put load. */
async function measure(
  cluster: LocalCluster,
  mode: string,
  leader: number,
): Promise<{ appendsPerEntry: number; allPerEntry: number; p50Ns: number }> {
  await lead(cluster, leader);
  const url = `${cluster.nodes.get(leader)!.url}/v1/kv/`;
  const headers = auth(cluster, "write");
  const put = async (w: number, seq: number) => {
    const r = await fetch(`${url}k${w}-${seq % 100}`, {
      method: "PUT",
      headers,
      body: values[(w * 131 + seq) % values.length],
    });
    await r.body?.cancel();
    return r.ok;
  };
  await runLoad(CLIENTS, 300, put, 0); // warm the connections and the relay
  const before = await crossSiteBytes(cluster);
  const c0 = (await status(cluster, leader)).commitIndex;
  const r = await runLoad(CLIENTS, DURATION_MS, put, 0);
  const c1 = (await status(cluster, leader)).commitIndex;
  const after = await crossSiteBytes(cluster);
  const entries = c1 - c0;
  const delta = (type: string) =>
    (after.get(type) ?? 0) - (before.get(type) ?? 0);
  const appends = delta("app") + delta("RelayBatch");
  let all = 0;
  for (const t of after.keys()) if (!t.startsWith("#")) all += delta(t);
  const remote = SITES[leader] === "a" ? "b" : "a";
  const group = `put ×${CLIENTS}, leader in site ${SITES[leader]}`;
  const name = `relay ${mode}, round ${round}`;
  suite.record(loadBenchResult(group, name, r));
  suite.metric(`${group}, ${name}: entries committed`, entries);
  suite.metric(
    `${group}, ${name}: leader's append bytes to site ${remote} per entry`,
    Math.round(appends / entries),
  );
  suite.metric(
    `${group}, ${name}: of which direct appends per entry`,
    Math.round(delta("app") / entries),
  );
  suite.metric(
    `${group}, ${name}: all cross-site bytes per entry`,
    Math.round(all / entries),
  );
  console.log(
    `  ${group}, ${name}: ${entries} entries; appends to site ${remote} ${
      (appends / entries).toFixed(0)
    } B/entry (${
      (delta("app") / entries).toFixed(0)
    } of them direct); all cross-site ${(all / entries).toFixed(0)} B/entry; ${
      delta("#batches_sent")
    } relayed batches, ${delta("#fallbacks")} fallbacks`,
  );
  return {
    appendsPerEntry: appends / entries,
    allPerEntry: all / entries,
    p50Ns: r.p50Ns,
  };
}

type Figures = Awaited<ReturnType<typeof measure>>;
const figures = new Map<string, Figures[]>();
// on, off, then off, on, …: neither mode always runs first.
const order = Array.from(
  { length: ROUNDS },
  (_, r) => r % 2 === 0 ? ["on", "off"] : ["off", "on"],
).flat();
let round = 0;
for (const [i, mode] of order.entries()) {
  round = Math.floor(i / 2) + 1;
  const dir = await Deno.makeTempDir({ prefix: "strata-relay-bench-" });
  const cluster = await startLocalCluster({
    size: 5,
    dataRoot: dir,
    extraArgs: ["--relay", mode],
    sites: (id) => SITES[id],
  });
  try {
    for (const leader of [4, 1]) {
      const key = `${mode} ${leader}`;
      figures.set(key, [
        ...(figures.get(key) ?? []),
        await measure(cluster, mode, leader),
      ]);
    }
  } finally {
    await cluster.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Means of the bytes, and the median of the rounds' p50 latencies. */
function combine(rounds: Figures[]): Figures {
  const mean = (f: (x: Figures) => number) =>
    rounds.reduce((a, x) => a + f(x), 0) / rounds.length;
  const p50s = rounds.map((x) => x.p50Ns).sort((a, b) => a - b);
  return {
    appendsPerEntry: mean((x) => x.appendsPerEntry),
    allPerEntry: mean((x) => x.allPerEntry),
    p50Ns: p50s[Math.floor(p50s.length / 2)]!,
  };
}

for (const leader of [4, 1]) {
  const on = combine(figures.get(`on ${leader}`)!);
  const off = combine(figures.get(`off ${leader}`)!);
  const remote = SITES[leader] === "a" ? "a" : "b";
  const followers = Object.values(SITES).filter((s) => s !== SITES[leader])
    .length;
  const where = `leader in site ${
    SITES[leader]
  }, ${followers} followers in site ${remote === "a" ? "b" : "a"}`;
  // One copy: what one remote follower's appends cost without relaying.
  suite.compare(
    `copies of each entry sent to the remote site, relay on (${where})`,
    "bytes",
    on.appendsPerEntry,
    off.appendsPerEntry / followers,
    { op: "<=", value: 1.25 },
  );
  suite.compare(
    `leader's cross-site append bytes per entry, relay on ÷ off (${where})`,
    "bytes",
    on.appendsPerEntry,
    off.appendsPerEntry,
  );
  suite.compare(
    `all cross-site bytes per entry, relay on ÷ off (${where})`,
    "bytes",
    on.allPerEntry,
    off.allPerEntry,
  );
  suite.compare(
    `put p50 latency, relay on ÷ off (${where})`,
    "time",
    on.p50Ns,
    off.p50Ns,
    { op: "<=", value: 1.5 },
  );
}
await suite.finish();
