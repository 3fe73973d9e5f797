/**
 * `deno task kv`: a local 3-node cluster on loopback, data under
 * ./data/kv (or --data-dir), HTTP on 2380-2382 (or --http-base). Prints
 * each node's addresses and stops every node on Ctrl-C.
 */
import { z } from "zod";
import {
  onShutdown,
  parseFlagsOrExit,
  tlsFiles,
  tokenFile,
} from "@strata/edge";
import { REPLICA_CORRUPT_EXIT_CODE } from "@strata/replication";
import { startLocalCluster } from "./cluster_launcher.ts";

const HELP =
  `usage: deno task kv [--data-dir DIR] [--http-base PORT] [--nodes N] [--tls-cert F --tls-key F]

Starts N (default 3) raft-kv nodes as separate processes on 127.0.0.1.
  --data-dir DIR    data root (default ./data/kv); node i keeps DIR/node-i. The
                    cluster's tokens (admin|write|read.token) and peer secret are
                    generated there on first start (mode 0600) and shared by the nodes
  --http-base PORT  node i serves HTTP on PORT+i-1 (default 2380)
  --nodes N         cluster size (default 3)
  --tls-cert FILE   serve HTTPS with this PEM certificate (with --tls-key), and run
                    the raft peer connections over TLS with it (nodes trust this cert)
  --tls-key FILE    the certificate's PEM private key
  --sites LIST      site label of each node in order, e.g. a,a,a,b,b (--site of each;
                    the leader relays appends to each remote site through one member)

It supervises the nodes: one that exits on its own (a crash, or exit code 74
after a failed disk write) is reported and restarted on its data directory
after 1 s, at most 5 times a minute, then left down.
`;

const flags = z.object({
  "data-dir": z.string().min(1).default("./data/kv"),
  "http-base": z.coerce.number().int().min(1).max(65_000).default(2380),
  nodes: z.coerce.number().int().min(1).max(9).default(3),
  "tls-cert": z.string().min(1).optional(),
  "tls-key": z.string().min(1).optional(),
  sites: z.string().regex(
    /^[A-Za-z0-9._-]{1,64}(,[A-Za-z0-9._-]{1,64})*$/,
    "a comma-separated list of site labels",
  ).optional(),
});

const f = parseFlagsOrExit(Deno.args, flags, HELP);
let tls;
try {
  tls = tlsFiles(f);
} catch (e) {
  console.error(`${(e as Error).message}\n\n${HELP}`);
  Deno.exit(2);
}
const sites = f.sites?.split(",");
if (sites && sites.length !== f.nodes) {
  console.error(`--sites names ${sites.length} sites for ${f.nodes} nodes`);
  Deno.exit(2);
}
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
  tls,
  // A replica that refuses its damaged data exits 65: restarting it
  // cannot help (the operator re-adds it empty; see the replication README).
  supervise: { noRestartCodes: [REPLICA_CORRUPT_EXIT_CODE] },
  sites: (id) => sites?.[id - 1],
});
for (const n of [...cluster.nodes.values()].sort((a, b) => a.id - b.id)) {
  console.log(
    `  node ${n.id}: ${n.url}  raft ${n.peer}  learners ${n.learner ?? "off"}${
      sites ? `  site ${sites[n.id - 1]}` : ""
    }  data ${n.dataDir}`,
  );
}
const first = cluster.nodes.get(1)!.url;
const admin = tokenFile(f["data-dir"], "admin");
const k = tls ? `--cacert ${tls.certFile} ` : "";
// The CLI's defaults are ./data/kv and ports 2380-2382 over HTTP.
const cliFlags = [
  f["data-dir"] === "./data/kv" ? "" : `--token-file ${admin} `,
  f["http-base"] === 2380 && f.nodes === 3 && !tls
    ? ""
    : `--endpoints ${
      [...cluster.nodes.values()].sort((a, b) => a.id - b.id).map((n) => n.url)
        .join(",")
    } `,
  tls ? `--ca-cert ${tls.certFile} ` : "",
].join("");
console.log(
  `\nEvery request needs a token. The tokens are in ${
    f["data-dir"]
  } (admin.token, write.token,
read.token; mode 0600). Try:
  TOKEN=$(cat ${admin})
  curl ${k}-H "Authorization: Bearer $TOKEN" -X PUT ${first}/v1/kv/hello -d world
  curl ${k}-H "Authorization: Bearer $TOKEN" ${first}/v1/kv/hello
  curl ${k}-H "Authorization: Bearer $TOKEN" ${first}/v1/status
  deno task kv:cli ${cliFlags}put hello world
Ctrl-C stops every node.`,
);
onShutdown(async () => {
  console.log("\nstopping…");
  await cluster.stop();
});
await new Promise(() => {});
