/**
 * Profiles the shard processes of a 3×1 search cluster under query load:
 * indexes the SpamAssassin corpus, runs the service bench's query set from
 * 16 closed-loop clients for a while (snippets on), stops, and leaves a V8
 * CPU profile with a markdown summary per shard and for the coordinator
 * (`--cpu-prof-md`) in DIR/shards and DIR/coordinator.
 *
 * Usage: deno run -A benches/search_profile.ts DIR [seconds]
 */
import { startCluster } from "../apps/search/cluster.ts";
import { readSpamAssassin } from "../apps/search/corpus.ts";
import { runLoad } from "./http_load.ts";
import { SERVICE_QUERIES } from "./search_service.ts";

const dir = Deno.args[0];
if (!dir) {
  console.error("usage: deno run -A benches/search_profile.ts DIR [seconds]");
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
  const lines: string[] = [];
  for await (const d of readSpamAssassin(Infinity, () => {})) {
    lines.push(JSON.stringify(d));
  }
  for (let i = 0; i < lines.length; i += 1000) {
    const res = await fetch(`${cluster.url}/v1/docs`, {
      method: "POST",
      body: lines.slice(i, i + 1000).join("\n"),
    });
    await res.body?.cancel();
  }
  const r = await runLoad(16, seconds * 1000, async (w, seq) => {
    const q = SERVICE_QUERIES[(w + seq) % SERVICE_QUERIES.length]!;
    const res = await fetch(
      `${cluster.url}/v1/search?q=${
        encodeURIComponent(q.strata)
      }&size=10&snippets=${snippets}`,
    );
    await res.json();
    return res.ok;
  });
  console.log(
    `${r.opsPerSec.toFixed(0)} queries/s, p50 ${
      (r.p50Ns / 1e6).toFixed(2)
    } ms, p99 ${(r.p99Ns / 1e6).toFixed(2)} ms`,
  );
} finally {
  await cluster.stop();
  await Deno.remove(data, { recursive: true });
}
