/**
 * bench:raft — strata's replicated KV (3 node processes) side by side with
 * a 3-member etcd cluster (Debian's etcd-server), on loopback, driven by
 * the same closed-loop HTTP load generator: puts of 8-byte keys with
 * 256-byte values, and linearizable gets, at 1, 16 and 256 concurrent
 * clients spread over all members. etcd is reached through its v3 JSON
 * gateway. Both fsync every acknowledged write.
 *
 * Goal: strata's put throughput at 256 clients at least etcd's, and its
 * p99 no worse than 1.5x. Where @strata/hosts can run (root), the same
 * loads also run, interleaved with the loopback run, against strata's 3
 * nodes on 3 network hosts, compared with it (no goal: it shows what a
 * virtual network costs); elsewhere that part is skipped with the reason.
 */
import { Buffer } from "node:buffer";
import { HostNetwork, hostsUnavailable } from "@strata/hosts";
import { startLocalCluster } from "@strata/kv/cluster_launcher";
import { startHostCluster } from "@strata/kv/host_cluster";
import {
  type EtcdCluster,
  findEtcd,
  startEtcdCluster,
} from "../scripts/etcd_cluster.ts";
import { QUICK, Suite } from "./harness.ts";
import { loadBenchResult, type LoadResult, runLoad } from "./http_load.ts";

const suite = new Suite(
  "raft",
  "strata raft-kv (3 processes) vs etcd 3-member cluster over HTTP, fsync on both",
);
const DURATION_MS = QUICK ? 500 : 3000;
const CONCURRENCY = QUICK ? [1, 16] : [1, 16, 256];
const KEYS = 10_000;
const value = new Uint8Array(256).fill(0x61);
const key8 = (n: number) => `k${String(n % KEYS).padStart(7, "0")}`;

async function ensureEtcd(): Promise<boolean> {
  if (await findEtcd()) return true;
  if (Deno.uid?.() !== 0) return false;
  console.log("etcd not found; installing Debian's etcd-server…");
  for (const args of [["update"], ["install", "-y", "etcd-server"]]) {
    const { code } = await new Deno.Command("apt-get", {
      args,
      stdout: "null",
      stderr: "null",
    }).output().catch(() => ({ code: 1 }));
    if (code !== 0) return false;
  }
  return (await findEtcd()) !== undefined;
}

function record(group: string, name: string, r: LoadResult) {
  suite.record(loadBenchResult(group, name, r));
  if (r.errors > 0) console.log(`    (${r.errors} failed requests)`);
}

async function prefill(put: (k: string) => Promise<boolean>) {
  // Reads need keys to exist; fill them with 64 writers.
  let next = 0;
  await Promise.all(Array.from({ length: 64 }, async () => {
    while (next < KEYS) await put(key8(next++));
  }));
}

/**
 * The put and get loads against a strata cluster's HTTP URLs, by group
 * (`put ×16 clients`, …), each run when called. Auth is on, as deployed:
 * every request carries `token` (the cluster's write token). `prepare`
 * waits for a leader and fills the keys the gets read.
 */
function strataLoads(urls: string[], token: string) {
  const headers = { authorization: `Bearer ${token}` };
  const put = async (w: number, k: string) => {
    const res = await fetch(`${urls[w % urls.length]}/v1/kv/${k}`, {
      method: "PUT",
      body: value,
      headers,
    });
    await res.body?.cancel();
    return res.ok;
  };
  const loads = new Map<string, () => Promise<LoadResult>>();
  for (const c of CONCURRENCY) {
    loads.set(
      `put ×${c} clients`,
      () => runLoad(c, DURATION_MS, (w, s) => put(w, key8(w * 7919 + s))),
    );
    loads.set(
      `get ×${c} clients`,
      () =>
        runLoad(c, DURATION_MS, async (w, s) => {
          const res = await fetch(
            `${urls[w % urls.length]}/v1/kv/${key8(w * 7919 + s)}`,
            { headers },
          );
          await res.body?.cancel();
          return res.ok;
        }),
    );
  }
  // A node's own status: an HTTP round trip with no consensus and no disk,
  // so the two sides differ by the network path (lo, or veth + bridge).
  loads.set(
    "status ×1 clients",
    () =>
      runLoad(1, DURATION_MS, async (w, s) => {
        const res = await fetch(`${urls[(w + s) % urls.length]}/v1/status`, {
          headers,
        });
        await res.body?.cancel();
        return res.ok;
      }),
  );
  return {
    loads,
    async prepare() {
      // Wait for a leader.
      for (
        let i = 0;
        i < 200 && !(await put(0, "warmup").catch(() => false));
        i++
      ) await new Promise((r) => setTimeout(r, 50));
      await prefill((k) => put(0, k));
    },
  };
}

// --- strata on loopback, and its 3 nodes on 3 hosts beside it ---
// The hosts run shows what crossing a (virtual) network costs next to
// loopback: veth pairs and a bridge instead of lo. It needs root and
// iptables (@strata/hosts); without them it is skipped with the reason.
// Both clusters run at once and each load is measured on one, then the
// other (the order alternating from load to load), so a change in the
// machine's load during the run weighs on both sides of the ratio alike.
const dataRoot = await Deno.makeTempDir({ prefix: "strata-bench-raft-" });
console.log("starting a 3-node strata raft-kv cluster…");
const strata = await startLocalCluster({ size: 3, dataRoot });
const noHosts = await hostsUnavailable();
let net: HostNetwork | undefined;
try {
  const sides = [{
    name: "strata",
    ...strataLoads(
      [...strata.nodes.values()].map((n) => `http://${n.http}`),
      strata.secrets!.tokens.write,
    ),
  }];
  if (noHosts === undefined) {
    console.log("starting strata raft-kv on 3 hosts…");
    net = await HostNetwork.create({ hosts: 3 });
    const { nodes, secrets } = await startHostCluster(net, {
      dataRoot: `${dataRoot}/hosts`,
    });
    sides.push({
      name: "strata on 3 hosts",
      ...strataLoads(
        [...nodes.values()].map((n) => `http://${n.http}`),
        secrets.tokens.write,
      ),
    });
  } else {
    console.log(`strata on 3 hosts: skipped, ${noHosts}`);
    suite.metric("strata on 3 hosts", `not run: ${noHosts}`);
  }
  for (const side of sides) await side.prepare();
  let turn = 0;
  for (const group of sides[0]!.loads.keys()) {
    const order = turn++ % 2 === 0 ? sides : sides.toReversed();
    for (const side of order) {
      record(group, side.name, await side.loads.get(group)!());
    }
  }
} finally {
  await net?.close();
  await strata.stop();
  await Deno.remove(dataRoot, { recursive: true }).catch(() => {});
}
if (net !== undefined) {
  const groups = [
    ...CONCURRENCY.flatMap((c) => [`put ×${c} clients`, `get ×${c} clients`]),
    "status ×1 clients",
  ];
  for (const g of groups) {
    const h = suite.get(g, "strata on 3 hosts");
    const l = suite.get(g, "strata");
    suite.compare(
      `${g}: throughput 3 hosts ÷ loopback`,
      "throughput",
      h.opsPerSec,
      l.opsPerSec,
    );
    suite.compare(
      `${g}: p50 3 hosts ÷ loopback`,
      "p50 latency",
      h.p50Ns,
      l.p50Ns,
    );
    suite.compare(
      `${g}: p99 3 hosts ÷ loopback`,
      "p99 latency",
      h.p99Ns,
      l.p99Ns,
    );
  }
}

// --- etcd ---
let etcd: EtcdCluster | undefined;
if (await ensureEtcd()) {
  console.log("starting a 3-member etcd cluster…");
  etcd = await startEtcdCluster(3);
  suite.metric("etcd version", etcd.version);
  const b64 = (s: string | Uint8Array) =>
    Buffer.from(typeof s === "string" ? new TextEncoder().encode(s) : s)
      .toString("base64");
  const valueB64 = b64(value);
  const urls = etcd.clientUrls;
  try {
    const put = async (w: number, k: string) => {
      const res = await fetch(`${urls[w % 3]}/v3/kv/put`, {
        method: "POST",
        body: JSON.stringify({ key: b64(k), value: valueB64 }),
      });
      await res.body?.cancel();
      return res.ok;
    };
    await prefill((k) => put(0, k));
    for (const c of CONCURRENCY) {
      record(
        `put ×${c} clients`,
        "etcd",
        await runLoad(c, DURATION_MS, (w, s) => put(w, key8(w * 7919 + s))),
      );
      record(
        `get ×${c} clients`,
        "etcd",
        await runLoad(c, DURATION_MS, async (w, s) => {
          // Linearizable by default (serializable: false), as strata's default.
          const res = await fetch(`${urls[w % 3]}/v3/kv/range`, {
            method: "POST",
            body: JSON.stringify({ key: b64(key8(w * 7919 + s)) }),
          });
          await res.body?.cancel();
          return res.ok;
        }),
      );
    }
  } finally {
    await etcd.stop();
  }
  for (const c of CONCURRENCY) {
    for (const op of ["put", "get"]) {
      const g = `${op} ×${c} clients`;
      const s = suite.get(g, "strata");
      const e = suite.get(g, "etcd");
      const goal = op === "put" && c === 256;
      suite.compare(
        `${g}: throughput strata ÷ etcd`,
        "throughput",
        s.opsPerSec,
        e.opsPerSec,
        goal ? { op: ">=", value: 1 } : undefined,
      );
      suite.compare(
        `${g}: p99 strata ÷ etcd`,
        "p99 latency",
        s.p99Ns,
        e.p99Ns,
        goal ? { op: "<=", value: 1.5 } : undefined,
      );
    }
  }
} else {
  console.log(
    "etcd is not installed and could not be installed: reporting strata alone",
  );
  suite.metric("etcd", "not available");
}
await suite.finish();
