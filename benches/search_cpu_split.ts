/**
 * Where a query's CPU goes in a 3×2 search cluster: indexes the
 * SpamAssassin corpus (no fsync), idles, then runs the service bench's
 * query set from one closed-loop client for 5 s with snippets off and on,
 * and prints the CPU milliseconds per query charged to each process
 * (coordinator first, then shard 0 replica 0, shard 0 replica 1, …), and
 * how many connections the coordinator opened to the shards.
 *
 * Usage: deno run -A benches/search_cpu_split.ts
 */
import { startCluster } from "@strata/search";
import { runLoad } from "./http_load.ts";
import { cpuMs } from "./proc_cpu.ts";
import { bulkIndex, loadDocs, serviceQuery } from "./search_service.ts";
const data = await Deno.makeTempDir();
const cluster = await startCluster({
  shards: 3,
  replicas: 2,
  dataDir: data,
  sync: "never",
});
try {
  const token = cluster.secrets?.tokens.admin;
  await bulkIndex(cluster.url, await loadDocs(Infinity), 1000, 1, token);
  await new Promise((r) => setTimeout(r, 3000));
  const pids = [
    cluster.coordinator.child.pid,
    ...cluster.replicas.flat().map((p) => p!.child.pid),
  ];
  const idle0 = await Promise.all(pids.map((p) => cpuMs([p])));
  await new Promise((r) => setTimeout(r, 3000));
  const idle1 = await Promise.all(pids.map((p) => cpuMs([p])));
  console.log("idle 3s cpu ms per pid", idle1.map((x, i) => x - idle0[i]!));
  for (const snippets of [false, true]) {
    const b = await Promise.all(pids.map((p) => cpuMs([p])));
    const r = await runLoad(
      1,
      5000,
      serviceQuery(cluster.url, snippets, token),
      300,
    );
    const a = await Promise.all(pids.map((p) => cpuMs([p])));
    console.log(
      "snippets",
      snippets,
      r.opsPerSec.toFixed(0),
      "q/s p50",
      (r.p50Ns / 1e6).toFixed(2),
      "ms; cpu ms/query per pid",
      a.map((x, i) => ((x - b[i]!) / r.total).toFixed(3)).join(" "),
    );
  }
  const metrics = await (await fetch(`${cluster.url}/metrics`, {
    headers: { authorization: `Bearer ${token}` },
  })).text();
  console.log(
    metrics.split("\n").filter((l) => l.startsWith("search_shard_connections"))
      .join("\n"),
  );
} finally {
  await cluster.stop();
  await Deno.remove(data, { recursive: true });
}
