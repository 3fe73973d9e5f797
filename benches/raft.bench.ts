/**
 * bench:raft — strata's replicated KV (3 node processes) side by side with
 * a 3-member etcd cluster (Debian's etcd-server), on loopback, driven by
 * the same closed-loop HTTP load generator: puts of 8-byte keys with
 * 256-byte values, and linearizable gets, at 1, 16 and 256 concurrent
 * clients spread over all members. etcd is reached through its v3 JSON
 * gateway. Both fsync every acknowledged write.
 *
 * Goal: strata's put throughput at 256 clients at least etcd's, and its
 * p99 no worse than 1.5x.
 */
import { Buffer } from "node:buffer";
import { startLocalCluster } from "../apps/kv/cluster_launcher.ts";
import {
  type EtcdCluster,
  findEtcd,
  startEtcdCluster,
} from "../scripts/etcd_cluster.ts";
import { QUICK, Suite } from "./harness.ts";
import { type LoadResult, runLoad } from "./http_load.ts";

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
  suite.record({
    group,
    name,
    opsPerSec: r.opsPerSec,
    meanNs: r.meanNs,
    p50Ns: r.p50Ns,
    p99Ns: r.p99Ns,
    samples: r.completed,
  });
  if (r.errors > 0) console.log(`    (${r.errors} failed requests)`);
}

async function prefill(put: (k: string) => Promise<boolean>) {
  // Reads need keys to exist; fill them with 64 writers.
  let next = 0;
  await Promise.all(Array.from({ length: 64 }, async () => {
    while (next < KEYS) await put(key8(next++));
  }));
}

// --- strata ---
const dataRoot = await Deno.makeTempDir({ prefix: "strata-bench-raft-" });
console.log("starting a 3-node strata raft-kv cluster…");
const strata = await startLocalCluster({ size: 3, dataRoot });
const strataUrls = [...strata.nodes.values()].map((n) => `http://${n.http}`);
// Auth is on, as deployed: every request carries the cluster's write token.
const strataAuth = {
  authorization: `Bearer ${strata.secrets!.tokens.write}`,
};
try {
  const put = async (w: number, k: string) => {
    const res = await fetch(`${strataUrls[w % 3]}/v1/kv/${k}`, {
      method: "PUT",
      body: value,
      headers: strataAuth,
    });
    await res.body?.cancel();
    return res.ok;
  };
  // Wait for a leader.
  for (
    let i = 0;
    i < 200 && !(await put(0, "warmup").catch(() => false));
    i++
  ) await new Promise((r) => setTimeout(r, 50));
  await prefill((k) => put(0, k));
  for (const c of CONCURRENCY) {
    record(
      `put ×${c} clients`,
      "strata",
      await runLoad(c, DURATION_MS, (w, s) => put(w, key8(w * 7919 + s))),
    );
    record(
      `get ×${c} clients`,
      "strata",
      await runLoad(c, DURATION_MS, async (w, s) => {
        const res = await fetch(
          `${strataUrls[w % 3]}/v1/kv/${key8(w * 7919 + s)}`,
          { headers: strataAuth },
        );
        await res.body?.cancel();
        return res.ok;
      }),
    );
  }
} finally {
  await strata.stop();
  await Deno.remove(dataRoot, { recursive: true }).catch(() => {});
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
