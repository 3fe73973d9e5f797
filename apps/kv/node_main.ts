/**
 * `deno task kv:node`: runs one replicated-KV node, the way it is
 * deployed on several machines. Prints one JSON line
 * `{"event":"ready","id","http","peer"}` once serving, so launchers and
 * tests know the bound ports.
 */
import { parseArgs } from "node:util";
import { z } from "zod";
import { createHttpApi, DEFAULT_LIMITS } from "./http_api.ts";
import { KvNode, type PeerAddress } from "./kv_node.ts";
import { parsePeerList } from "@strata/replication";

const HELP =
  `usage: deno task kv:node --id N --peers LIST --data-dir DIR [options]

  --id N              this node's id (a positive integer, unique in the cluster)
  --peers LIST        the initial members: id=peerHost:peerPort[/httpHost:httpPort],...
                      e.g. 1=127.0.0.1:7001/127.0.0.1:2380,2=127.0.0.1:7002/127.0.0.1:2381
                      (this node included; its entry gives --listen and --http defaults)
  --data-dir DIR      where the log, snapshots and hard state live (locked to this process)
  --listen H:P        raft TCP address to bind (default: this node's entry in --peers)
  --http H:P          HTTP address to bind (default: this node's entry, else 127.0.0.1:0)
  --join              start as a new member of a running cluster (add it first with
                      POST /v1/cluster/members {"action":"add",...})
  --tick-ms N         milliseconds per raft tick (default 100; election timeout is 10-20 ticks)
  --snapshot-entries N  snapshot after this many applied entries (default 100000, as etcd)
  --max-value-bytes N largest value accepted (default 1048576)
  --secret S          shared secret for peer authentication (or STRATA_RAFT_SECRET)
  -h, --help          this text
`;

const hostPort = z.string().regex(/^[^\s:/]+:\d{1,5}$/, "expected host:port");
const flagsSchema = z.object({
  id: z.coerce.number().int().positive(),
  peers: z.string().min(1, "--peers is required"),
  "data-dir": z.string().min(1, "--data-dir is required"),
  listen: hostPort.optional(),
  http: hostPort.optional(),
  join: z.boolean().default(false),
  "tick-ms": z.coerce.number().int().min(5).max(10_000).default(100),
  "snapshot-entries": z.coerce.number().int().min(10).default(100_000),
  "max-value-bytes": z.coerce.number().int().min(1).max(64 << 20).default(
    DEFAULT_LIMITS.maxValueBytes,
  ),
  secret: z.string().optional(),
});

/** Parses `1=h:p/h:p,2=...` into id → addresses. @throws Error with a clear message. */
export const parsePeers = parsePeerList;

async function main(): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args: Deno.args,
      options: {
        id: { type: "string" },
        peers: { type: "string" },
        "data-dir": { type: "string" },
        listen: { type: "string" },
        http: { type: "string" },
        join: { type: "boolean" },
        "tick-ms": { type: "string" },
        "snapshot-entries": { type: "string" },
        "max-value-bytes": { type: "string" },
        secret: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (e) {
    console.error(`${e instanceof Error ? e.message : e}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const parsed = flagsSchema.safeParse(values);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    console.error(`--${issue.path.join(".")}: ${issue.message}\n\n${HELP}`);
    return 2;
  }
  const f = parsed.data;
  let members: Map<number, PeerAddress>;
  try {
    members = parsePeers(f.peers);
  } catch (e) {
    console.error((e as Error).message);
    return 2;
  }
  const self = members.get(f.id);
  const listen = f.listen ?? self?.peer;
  if (!listen) {
    console.error(
      `--listen is required when --peers has no entry for node ${f.id}`,
    );
    return 2;
  }
  if (!f.join && !self) {
    console.error(
      `--peers must include this node (${f.id}) unless --join is given`,
    );
    return 2;
  }
  const [lh, lp] = [
    listen.slice(0, listen.lastIndexOf(":")),
    Number(listen.slice(listen.lastIndexOf(":") + 1)),
  ];
  const httpAddr = f.http ?? self?.http ?? "127.0.0.1:0";
  const [hh, hp] = [
    httpAddr.slice(0, httpAddr.lastIndexOf(":")),
    Number(httpAddr.slice(httpAddr.lastIndexOf(":") + 1)),
  ];
  if (self && !self.http && hp !== 0) self.http = httpAddr;

  let node: KvNode;
  try {
    node = await KvNode.start({
      id: f.id,
      members,
      dataDir: f["data-dir"],
      listen: { hostname: lh, port: lp },
      httpAddress: httpAddr,
      join: f.join,
      tickMs: f["tick-ms"],
      snapshotEntries: f["snapshot-entries"],
      secret: f.secret ?? Deno.env.get("STRATA_RAFT_SECRET"),
    });
  } catch (e) {
    console.error(
      `node ${f.id}: cannot start: ${e instanceof Error ? e.message : e}`,
    );
    return 1;
  }
  const app = createHttpApi(node, {
    ...DEFAULT_LIMITS,
    maxValueBytes: f["max-value-bytes"],
  });
  const server = Deno.serve(
    { hostname: hh, port: hp, onListen: () => {} },
    app.fetch,
  );
  const httpPort = server.addr.port;
  console.log(
    JSON.stringify({
      event: "ready",
      id: f.id,
      http: `${hh}:${httpPort}`,
      peer: `${lh}:${node.peerPort}`,
    }),
  );

  const stop = async () => {
    await server.shutdown().catch(() => {});
    await node.stop();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  await server.finished;
  return 0;
}

if (import.meta.main) Deno.exit(await main());
