/**
 * `deno task kv:node`: runs one replicated-KV node, the way it is
 * deployed on several machines. Prints one JSON line
 * `{"event":"ready","id","http","peer","learner"}` once serving, so
 * launchers and tests know the bound ports.
 */
import { z } from "zod";
import {
  EDGE_FLAGS,
  EDGE_FLAGS_USAGE,
  EdgeConfigError,
  hostPortFlag,
  isLoopback,
  nodeTls,
  onShutdown,
  parseFlagsOrExit,
  printReadyLine,
  resolveAccess,
  serveHttp,
} from "@strata/edge";
import { createHttpApi, DEFAULT_LIMITS } from "./http_api.ts";
import { KvNode, type PeerAddress } from "./kv_node.ts";
import type { LearnerServerOptions } from "./learner_server.ts";
import {
  corruptDataExitCode,
  exitOnReplicaFailure,
  parsePeerList,
} from "@strata/replication";
import {
  CLOCK_GUARD_FLAGS,
  CLOCK_GUARD_USAGE,
  clockGuardFromFlags,
} from "./clock_guard_flags.ts";
import {
  installWallStep,
  WALL_STEP_FLAGS,
  WALL_STEP_USAGE,
} from "./wall_step_flag.ts";

const HELP =
  `usage: deno task kv:node --id N --peers LIST --data-dir DIR [options]

  --id N              this node's id (a positive integer, unique in the cluster)
  --peers LIST        the initial members: id=peerHost:peerPort[/httpHost:httpPort],...
                      e.g. 1=127.0.0.1:7001/127.0.0.1:2380,2=127.0.0.1:7002/127.0.0.1:2381
                      (this node included; its entry gives --listen and --http defaults)
  --data-dir DIR      where the log, snapshots and hard state live (locked to this process)
  --listen H:P        raft TCP address to bind (default: this node's entry in --peers)
  --http H:P          HTTP address to bind (default: this node's entry, else 127.0.0.1:0)
  --learner H:P       learner port: clients follow a key prefix here (KvClient.follow;
                      framed TCP, HMAC handshake keyed by the kv tokens; default: the
                      --http host, a free port; "off": none)
  --join              start as a new member of a running cluster (add it with
                      POST /v1/cluster/members {"action":"add",...}, or several at once
                      with POST /v1/cluster/changes / kv:cli reconfigure)
  --tick-ms N         milliseconds per raft tick (default 100; election timeout is 10-20 ticks)
  --snapshot-entries N  snapshot after this many applied entries (default 100000, as etcd)
  --max-value-bytes N largest value accepted (default 1048576)
  --site NAME         this member's site (data center) label, shown in /v1/status; a
                      leader sends each remote site's appends as one packed message
                      to a relay member of that site, which passes them on
  --relay on|off      relay appends to remote sites when leading (default on; needs --site)
  --relay-timeout-ms N  a relayed append unanswered this long sends its follower
                      direct (and replaces a silent relay; default 500)
  --secret S          peer secret of the raft transport (default: peer.secret in the auth
                      dir, or STRATA_RAFT_SECRET); every node of a cluster needs the same
${CLOCK_GUARD_USAGE}
${WALL_STEP_USAGE}
${EDGE_FLAGS_USAGE}
  -h, --help          this text

Every HTTP route needs a token (Authorization: Bearer ...): reads the read role,
writes/txn/sessions/locks write, cluster membership and leadership transfer admin.
`;

const flagsSchema = z.object({
  ...EDGE_FLAGS,
  ...CLOCK_GUARD_FLAGS,
  ...WALL_STEP_FLAGS,
  id: z.coerce.number().int().positive(),
  peers: z.string({ error: "required" }).min(1),
  "data-dir": z.string({ error: "required" }).min(1),
  listen: hostPortFlag.optional(),
  http: hostPortFlag.optional(),
  learner: z.union([z.literal("off"), hostPortFlag]).optional(),
  join: z.boolean().default(false),
  "tick-ms": z.coerce.number().int().min(5).max(10_000).default(100),
  "snapshot-entries": z.coerce.number().int().min(10).default(100_000),
  "max-value-bytes": z.coerce.number().int().min(1).max(64 << 20).default(
    DEFAULT_LIMITS.maxValueBytes,
  ),
  secret: z.string().min(16, "use at least 16 characters").optional(),
  site: z.string().regex(
    /^[A-Za-z0-9._-]{1,64}$/,
    "1-64 letters, digits, '.', '_' or '-'",
  ).optional(),
  relay: z.enum(["on", "off"]).default("on"),
  "relay-timeout-ms": z.coerce.number().int().min(10).max(60_000).default(
    500,
  ),
});

/** Parses `1=h:p/h:p,2=...` into id → addresses. @throws Error with a clear message. */
export const parsePeers = parsePeerList;

function splitHostPort(a: string): [string, number] {
  const i = a.lastIndexOf(":");
  return [a.slice(0, i).replace(/^\[|\]$/g, ""), Number(a.slice(i + 1))];
}

/**
 * The learner port's options: any kv token (read, write or admin) keys a
 * learner's handshake; with TLS, the learner port serves the node's
 * certificate too.
 */
function learnerOptions(
  address: string,
  tokens: Readonly<Record<string, string>> | undefined,
  tls: { cert: string; key: string } | undefined,
): LearnerServerOptions {
  const [hostname, port] = splitHostPort(address);
  return {
    hostname,
    port,
    ...(tokens ? { secrets: Object.values(tokens) } : {}),
    ...(tls ? { tls: { cert: tls.cert, key: tls.key } } : {}),
  };
}

async function main(): Promise<number> {
  const f = parseFlagsOrExit(Deno.args, flagsSchema, HELP);
  let members: Map<number, PeerAddress>;
  let clockGuard;
  try {
    members = parsePeers(f.peers);
    clockGuard = clockGuardFromFlags(f);
  } catch (e) {
    console.error((e as Error).message);
    return 2;
  }
  if (f["test-wall-step-ms"] !== undefined) {
    installWallStep(f["test-wall-step-ms"], `node ${f.id}`);
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
  const [lh, lp] = splitHostPort(listen);
  const httpAddr = f.http ?? self?.http ?? "127.0.0.1:0";
  const [hh, hp] = splitHostPort(httpAddr);
  if (self && !self.http && hp !== 0) self.http = httpAddr;

  let access;
  let tls;
  let peerTls: { cert: string; key: string; caCerts: string[] } | undefined;
  try {
    // With --tls-cert, the raft peer connections use TLS too: peers'
    // certificates must chain to --ca-cert (default: the node's own cert).
    const t = await nodeTls(f);
    if (f["ca-cert"] && !t.serve) {
      throw new EdgeConfigError("--ca-cert needs --tls-cert and --tls-key");
    }
    tls = t.serve;
    peerTls = t.serve &&
      { cert: t.serve.cert, key: t.serve.key, caCerts: t.caCerts! };
    access = await resolveAccess({
      listenHost: hh,
      secretsDir: f["auth-dir"] ?? f["data-dir"],
      insecureNoAuth: f["insecure-no-auth"],
      allowedHosts: f["allowed-hosts"],
    });
  } catch (e) {
    console.error(`node ${f.id}: ${e instanceof Error ? e.message : e}`);
    return e instanceof EdgeConfigError ? 2 : 1;
  }
  const secret = f.secret ?? Deno.env.get("STRATA_RAFT_SECRET") ??
    access.secrets?.peerSecret;
  if (secret === undefined && !isLoopback(lh)) {
    console.error(
      `node ${f.id}: refusing to listen for raft peers on ${lh} without a peer secret: drop --insecure-no-auth or give --secret`,
    );
    return 2;
  }
  if (access.auth === "off") {
    console.error(
      `node ${f.id}: auth is OFF (--insecure-no-auth): anyone who can reach ${hh} may read, write and reconfigure this cluster`,
    );
  }

  const learnerAddr = f.learner ?? `${hh.includes(":") ? `[${hh}]` : hh}:0`;
  let node: KvNode;
  try {
    node = await KvNode.start({
      ...(learnerAddr === "off" ? {} : {
        learner: learnerOptions(learnerAddr, access.secrets?.tokens, peerTls),
      }),
      id: f.id,
      members,
      dataDir: f["data-dir"],
      listen: { hostname: lh, port: lp },
      httpAddress: httpAddr,
      join: f.join,
      tickMs: f["tick-ms"],
      snapshotEntries: f["snapshot-entries"],
      secret,
      clockGuard,
      tls: peerTls,
      site: f.site,
      relay: {
        enabled: f.relay === "on",
        timeoutMs: f["relay-timeout-ms"],
      },
    });
  } catch (e) {
    // Damaged data: refuse with exit code 65 (a restart cannot help).
    const code = corruptDataExitCode(e, `kv node ${f.id}`, f["data-dir"]);
    if (code !== undefined) return code;
    console.error(
      `node ${f.id}: cannot start: ${e instanceof Error ? e.message : e}`,
    );
    return 1;
  }
  // A failed disk write halts the replica: exit (code 74) so a supervisor
  // restarts the process, which recovers from what is durable.
  exitOnReplicaFailure(node, `kv node ${f.id}`);
  const app = createHttpApi(node, access, {
    ...DEFAULT_LIMITS,
    maxValueBytes: f["max-value-bytes"],
  });
  let listener;
  try {
    listener = await serveHttp({
      hostname: hh,
      port: hp,
      handler: app.fetch,
      tls,
    });
  } catch (e) {
    console.error(`node ${f.id}: ${e instanceof Error ? e.message : e}`);
    await node.stop();
    return 1;
  }
  printReadyLine({
    id: f.id,
    http: listener.address,
    scheme: listener.scheme,
    peer: `${lh}:${node.peerPort}`,
    ...(node.learnerPort !== undefined
      ? { learner: `${splitHostPort(learnerAddr)[0]}:${node.learnerPort}` }
      : {}),
  });
  onShutdown(async () => {
    await listener.server.shutdown().catch(() => {});
    await node.stop();
  });
  await listener.server.finished;
  return 0;
}

if (import.meta.main) Deno.exit(await main());
