/**
 * `deno task kv`: a local 3-node cluster on loopback, data under
 * ./data/kv (or --data-dir), HTTP on 2380-2382 (or --http-base). Prints
 * each node's addresses and stops every node on Ctrl-C.
 */
import { parseArgs } from "node:util";
import { z } from "zod";
import { startLocalCluster } from "./cluster_launcher.ts";

const HELP =
  `usage: deno task kv [--data-dir DIR] [--http-base PORT] [--nodes N]

Starts N (default 3) raft-kv nodes as separate processes on 127.0.0.1.
  --data-dir DIR    data root (default ./data/kv); node i keeps DIR/node-i
  --http-base PORT  node i serves HTTP on PORT+i-1 (default 2380)
  --nodes N         cluster size (default 3)
`;

const flags = z.object({
  "data-dir": z.string().min(1).default("./data/kv"),
  "http-base": z.coerce.number().int().min(1).max(65_000).default(2380),
  nodes: z.coerce.number().int().min(1).max(9).default(3),
});

let values;
try {
  values = parseArgs({
    args: Deno.args,
    options: {
      "data-dir": { type: "string" },
      "http-base": { type: "string" },
      nodes: { type: "string" },
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
const parsed = flags.safeParse(values);
if (!parsed.success) {
  const issue = parsed.error.issues[0]!;
  console.error(`--${issue.path.join(".")}: ${issue.message}\n\n${HELP}`);
  Deno.exit(2);
}
const f = parsed.data;
const ports = Array.from({ length: f.nodes }, (_, i) => f["http-base"] + i);
for (const p of ports) {
  try {
    Deno.listen({ hostname: "127.0.0.1", port: p }).close();
  } catch {
    console.error(`port ${p} is taken; choose another base with --http-base`);
    Deno.exit(1);
  }
}
await Deno.mkdir(f["data-dir"], { recursive: true });
console.log(`starting ${f.nodes} raft-kv nodes (data under ${f["data-dir"]})…`);
const cluster = await startLocalCluster({
  size: f.nodes,
  dataRoot: f["data-dir"],
  httpPorts: ports,
  inheritStderr: true,
});
for (const n of [...cluster.nodes.values()].sort((a, b) => a.id - b.id)) {
  console.log(
    `  node ${n.id}: http://${n.http}  raft ${n.peer}  data ${n.dataDir}`,
  );
}
const first = cluster.nodes.get(1)!.http;
console.log(
  `\ntry:\n  curl -X PUT ${first}/v1/kv/hello -d world\n  curl ${first}/v1/kv/hello\n  curl ${first}/v1/status\nCtrl-C stops every node.`,
);
const stop = async () => {
  console.log("\nstopping…");
  await cluster.stop();
  Deno.exit(0);
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
await new Promise(() => {});
