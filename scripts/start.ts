/**
 * `deno task start`: the first thing a new user runs. Starts, on loopback
 * with data under ./data (reused by the next start):
 *
 * - a 3-node raft-kv cluster (HTTP on 2380-2382, data/raft),
 * - a GFS master with 3 chunkservers (data/gfs),
 * - the search cluster, 3 shards × 2 replicas and a coordinator
 *   (data/search), with the SpamAssassin corpus indexed on first start,
 *
 * every node a separate process, then prints the endpoints and commands to
 * try. Ctrl-C stops every process. The playground's dashboard will be
 * served from here too.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { z } from "zod";
import { startLocalCluster } from "../apps/raft/cluster_launcher.ts";
import { startCluster as startGfs } from "../apps/gfs/process_cluster.ts";
import { startCluster as startSearch } from "../apps/search/cluster.ts";
import { readSpamAssassin } from "../apps/search/corpus.ts";

const HELP =
  `usage: deno task start [--data-dir ./data] [--raft-http-base 2380] [--no-index]

  --data-dir DIR        where every cluster keeps its data (default ./data)
  --raft-http-base P    raft node i serves HTTP on P+i-1 (default 2380)
  --no-index            do not index the search corpus (start empty)
`;

const FlagsSchema = z.object({
  "data-dir": z.string().min(1).default("./data"),
  "raft-http-base": z.coerce.number().int().min(1).max(65_000).default(2380),
  "no-index": z.boolean().default(false),
});

let values;
try {
  values = parseArgs({
    args: Deno.args,
    options: {
      "data-dir": { type: "string" },
      "raft-http-base": { type: "string" },
      "no-index": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  }).values;
} catch (e) {
  console.error(`${(e as Error).message}\n\n${HELP}`);
  Deno.exit(2);
}
if (values.help) {
  console.log(HELP);
  Deno.exit(0);
}
const parsed = FlagsSchema.safeParse(values);
if (!parsed.success) {
  const issue = parsed.error.issues[0]!;
  console.error(`--${issue.path.join(".")}: ${issue.message}\n\n${HELP}`);
  Deno.exit(2);
}
const flags = parsed.data;
const dataDir = flags["data-dir"];
const raftPorts = [0, 1, 2].map((i) => flags["raft-http-base"] + i);
for (const port of raftPorts) {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
  } catch {
    console.error(
      `port ${port} is taken (another start running?); pick another base with --raft-http-base`,
    );
    Deno.exit(1);
  }
}

const stops: Array<() => Promise<void>> = [];
const stopAll = async () => {
  for (const stop of stops.reverse()) await stop().catch(() => {});
};
let stopping = false;
const onSignal = async () => {
  if (stopping) return;
  stopping = true;
  console.log("\nstopping every process…");
  await stopAll();
  Deno.exit(0);
};
Deno.addSignalListener("SIGINT", onSignal);
Deno.addSignalListener("SIGTERM", onSignal);

try {
  console.log(`[1/3] raft-kv: 3 nodes, data in ${join(dataDir, "raft")}…`);
  await Deno.mkdir(join(dataDir, "raft"), { recursive: true });
  const raft = await startLocalCluster({
    size: 3,
    dataRoot: join(dataDir, "raft"),
    httpPorts: raftPorts,
  });
  stops.push(() => raft.stop());

  console.log(
    `[2/3] gfs: a master and 3 chunkservers, data in ${join(dataDir, "gfs")}…`,
  );
  const gfs = await startGfs({
    dataDir: join(dataDir, "gfs"),
    chunkservers: 3,
  });
  stops.push(() => gfs.stop());

  console.log(
    `[3/3] search: 3 shards × 2 replicas + coordinator, data in ${
      join(dataDir, "search")
    }…`,
  );
  const search = await startSearch({
    shards: 3,
    replicas: 2,
    dataDir: join(dataDir, "search"),
  });
  stops.push(() => search.stop());
  const stats = await (await fetch(`${search.url}/v1/stats`)).json() as {
    docs: number;
  };
  if (stats.docs === 0 && !flags["no-index"]) {
    let total = 0;
    let indexed = 0;
    let batch: string[] = [];
    const t0 = performance.now();
    const send = async () => {
      if (batch.length === 0) return;
      const res = await fetch(`${search.url}/v1/docs`, {
        method: "POST",
        body: batch.join("\n"),
      });
      if (!res.ok) throw new Error(`indexing failed: ${await res.text()}`);
      await res.body?.cancel();
      indexed += batch.length;
      batch = [];
      const rate = Math.round(
        indexed / Math.max(1e-3, (performance.now() - t0) / 1000),
      );
      console.log(`      indexed ${indexed}/${total} emails (${rate} docs/s)`);
    };
    for await (const doc of readSpamAssassin(Infinity, (_, n) => total = n)) {
      batch.push(JSON.stringify(doc));
      if (batch.length >= 1000) await send();
    }
    await send();
  } else {
    console.log(`      ${stats.docs} documents already indexed`);
  }

  const raftHttp = [...raft.nodes.values()].sort((a, b) => a.id - b.id).map((
    n,
  ) => n.http);
  console.log(`
strata is running (every node is its own process; Ctrl-C stops them all)

raft-kv   ${raftHttp.map((h) => `http://${h}`).join("  ")}
  curl -X PUT ${raftHttp[0]}/v1/kv/hello -d world
  curl ${raftHttp[1]}/v1/kv/hello
  curl ${raftHttp[0]}/v1/status
  deno task raft:cli --endpoints ${raftHttp.join(",")} watch

gfs       ${gfs.master.url}
  deno task gfs:cli --master ${gfs.master.url} put README.md /docs/readme.md
  deno task gfs:cli --master ${gfs.master.url} ls /docs
  curl ${gfs.master.url}/v1/health

search    ${search.url}
  curl '${search.url}/v1/search?q=perl+module&size=3'
  curl '${search.url}/v1/search?q=%22spam+filter%22'
  curl ${search.url}/v1/stats
`);
  await new Promise(() => {});
} catch (e) {
  console.error(`start failed: ${e instanceof Error ? e.message : e}`);
  await stopAll();
  Deno.exit(1);
}
