/**
 * Profiles the shard processes of a 3×1 search cluster under query load:
 * indexes the SpamAssassin corpus, runs the service bench's query set from
 * 16 closed-loop clients for a while (snippets on), stops, and leaves a V8
 * CPU profile with a markdown summary per shard and for the coordinator
 * (`--cpu-prof-md`) in DIR/shards and DIR/coordinator.
 *
 * Usage: deno run -A benches/search_profile.ts DIR [seconds] [nosnippets]
 */
import { startCluster } from "@strata/search";
import { runLoad } from "./http_load.ts";
import { bulkIndex, loadDocs, serviceQuery } from "./search_service.ts";

const dir = Deno.args[0];
if (!dir) {
  console.error(
    "usage: deno run -A benches/search_profile.ts DIR [seconds] [nosnippets]",
  );
  Deno.exit(2);
}
const seconds = Number(Deno.args[1] ?? "15");
const snippets = Deno.args[2] !== "nosnippets";
await Deno.mkdir(dir, { recursive: true });
const data = await Deno.makeTempDir();
const cluster = await startCluster({
  shards: 3,
  replicas: 1,
  dataDir: data,
  sync: "never",
  shardRunFlags: [`--cpu-prof-dir=${dir}/shards`, "--cpu-prof-md"],
  coordinatorRunFlags: [`--cpu-prof-dir=${dir}/coordinator`, "--cpu-prof-md"],
});
try {
  const token = cluster.secrets?.tokens.admin;
  await bulkIndex(cluster.url, await loadDocs(Infinity), 1000, 1, token);
  const r = await runLoad(
    16,
    seconds * 1000,
    serviceQuery(cluster.url, snippets, token),
  );
  console.log(
    `${r.opsPerSec.toFixed(0)} queries/s, p50 ${
      (r.p50Ns / 1e6).toFixed(2)
    } ms, p99 ${(r.p99Ns / 1e6).toFixed(2)} ms`,
  );
} finally {
  await cluster.stop();
  await Deno.remove(data, { recursive: true });
}
