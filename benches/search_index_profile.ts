/**
 * Profiles indexing over the service: a 3×2 cluster as the service bench
 * starts it (fsync on), the SpamAssassin corpus sent as 500-line bulk NDJSON
 * requests, 4 in flight; prints documents/s and the CPU time of the
 * coordinator and of each replica (`/proc`), and leaves a V8 CPU profile
 * with a markdown summary per process in DIR/shards and DIR/coordinator
 * (`--cpu-prof-md`). With `noprof` it only measures (for A/B runs).
 *
 * Usage: deno run -A benches/search_index_profile.ts DIR [noprof]
 */
import { startCluster } from "@strata/search";
import { cpuMs } from "./proc_cpu.ts";
import { bulkIndex, loadDocs } from "./search_service.ts";

const dir = Deno.args[0];
if (!dir) {
  console.error(
    "usage: deno run -A benches/search_index_profile.ts DIR [noprof]",
  );
  Deno.exit(2);
}
const prof = Deno.args[1] !== "noprof";
await Deno.mkdir(dir, { recursive: true });
const docs = await loadDocs(Infinity);
const data = await Deno.makeTempDir();
const cluster = await startCluster({
  shards: 3,
  replicas: 2,
  dataDir: data,
  sync: "always",
  shardRunFlags: prof ? [`--cpu-prof-dir=${dir}/shards`, "--cpu-prof-md"] : [],
  coordinatorRunFlags: prof
    ? [`--cpu-prof-dir=${dir}/coordinator`, "--cpu-prof-md"]
    : [],
});
try {
  const coord = [cluster.coordinator.child.pid];
  const reps = cluster.replicas.flat().map((p) => p!.child.pid);
  const c0 = await cpuMs(coord);
  const r0 = await cpuMs(reps);
  const each0 = await Promise.all(reps.map((p) => cpuMs([p])));
  const t0 = performance.now();
  await bulkIndex(cluster.url, docs, 500, 4, cluster.secrets?.tokens.admin);
  const ms = performance.now() - t0;
  const c1 = await cpuMs(coord);
  const r1 = await cpuMs(reps);
  const each = (await Promise.all(reps.map((p) => cpuMs([p])))).map((v, i) =>
    (v - each0[i]!).toFixed(0)
  );
  // Background work the bulk load left (refreshes, merges) is indexing
  // work too: CPU again once it has settled.
  await new Promise((r) => setTimeout(r, 3000));
  const settled = ((await cpuMs([...coord, ...reps])) - c0 - r0) / docs.length;
  console.log(
    `${docs.length} docs in ${ms.toFixed(0)} ms: ${
      (docs.length / (ms / 1000)).toFixed(0)
    } docs/s; CPU ms/doc coordinator ${
      ((c1 - c0) / docs.length).toFixed(3)
    }, replicas ${
      ((r1 - r0) / docs.length).toFixed(3)
    } (all 6; ms per replica ${each.join(" ")}); all 7 after 3 s settling ${
      settled.toFixed(3)
    } ms/doc; load ${(await Deno.readTextFile("/proc/loadavg")).trim()}`,
  );
} finally {
  await cluster.stop();
  await Deno.remove(data, { recursive: true });
}
