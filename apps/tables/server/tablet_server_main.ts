/**
 * `tablet_server_main.ts`: one tablet server process. It registers in the
 * kv service (session, lock and key `tables/servers/<id>`), serves the
 * tablets the master orders it to open, and stops serving the moment its
 * session lease runs out; it then re-registers with a new session and
 * waits for new orders. Prints `{"event":"ready","id","http"}` once
 * serving.
 */
import { join } from "node:path";
import { z } from "zod";
import {
  EDGE_FLAGS,
  EDGE_FLAGS_USAGE,
  hostPortFlag,
  isLoopback,
  nodeHttpClient,
  nodeTls,
  onShutdown,
  parseFlagsOrExit,
  printReadyLine,
  readSecretFile,
  resolveAccess,
  serveHttp,
} from "@strata/edge";
import {
  KV_FLAGS,
  KV_FLAGS_USAGE,
  kvClientFromFlags,
} from "../shared/kv_flags.ts";
import { createTabletServerApi } from "./tablet_server_api.ts";
import { TabletHost } from "./tablet_host.ts";
import { register, type Registration } from "./registration.ts";
import { GfsClient } from "@strata/gfs";
import {
  localStoreFolder,
  openGfsTabletStorage,
  openTabletStorage,
} from "./tablet_storage.ts";
import { gfsStoreFolder } from "../storage/store_sweep.ts";
import { ServerLog } from "../storage/server_log.ts";
import { SERVER_LOG_DIR, splitDeadServerLogs } from "../storage/log_split.ts";
import { sweepDeadLogs } from "../storage/log_sweep.ts";
import { cacheTabletOpener } from "../cache/cache_storage.ts";
import {
  gfsSnapshotStore,
  localSnapshotStore,
} from "../cache/snapshot_store.ts";
import { serverKey } from "../shared/kv_layout.ts";
import { tableNameSchema } from "../shared/wire.ts";
import { startRespServer } from "../resp/resp_server.ts";
import { TabletMap } from "../resp/tablet_map.ts";
import {
  EVICTION_POLICIES,
  Evictor,
  parseMemorySize,
} from "../cache/eviction.ts";
import { attachRooms } from "../rooms/rooms_on_server.ts";
import { CrdtService } from "../crdt/crdt_service.ts";
import { createCrdtApi } from "../crdt/crdt_api.ts";

const HELP =
  `usage: tablet_server_main.ts --id ID --kv LIST --data-dir DIR [options]

A tables tablet server: serves the tablets the active master assigns to it.
  --id ID             this server's id (letters, digits, '-', '_'); one process per id
  --data-dir DIR      this server's own files (and, by default, its tokens)
  --gfs URLS          keep tablets in this GFS cell (its masters' URLs, comma-separated):
                      SSTables, manifests and commit logs are GFS files under --gfs-root
  --gfs-root PATH     GFS directory of the tablets (default /tables)
  --gfs-token-file F  a GFS token with the write role (the cell's write.token;
                      default: STRATA_GFS_TOKEN, else none)
  --storage-root DIR  without --gfs: a local directory every tablet server of the cell
                      sees (one machine only; default: DIR/../tablets)
  --http H:P          HTTP address to bind (default 127.0.0.1:0)
  --memtable-bytes N  flush a tablet's memtable past N bytes (default 4 MiB)
  --log-split-min-bytes N  when this server splits a dead server's commit log by
                      tablet for the master, it leaves logs under N bytes whole (their
                      tablets' new owners read them whole; default 4 MiB; 0 = always split)
  --log-gather-ms N   group commit of a busy commit log (its last block's writes and
                      those queued meanwhile were 16 or more): wait up to N ms, and at
                      most as long as that block took, for that many writes to queue
                      before the next block (default 10; 0 = each block goes as soon
                      as the last one is done)
  --load-window-ms N  window of the per-tablet load rates reported to the master (default 10000)
  --compact-shared-ms N  compact a split's or merge's new tablet N ms after it opens, dropping
                      its references to its sources' SSTables (default 60000; 0 = never)
  --resp H:P          also speak RESP2 (redis-cli, Redis clients) on this address
                      (over TLS with --tls-cert/--tls-key: redis-cli --tls --cacert)
  --resp-table NAME   the memory table RESP keys live in (default redis)
  --resp-maxmemory N  bound on the bytes this server's tablets of that table hold
                      (Redis' maxmemory: 100mb, 2gb, bytes; default 0 = none)
  --resp-maxmemory-policy P
                      over the bound: noeviction (writes get -OOM, the default),
                      allkeys-lru, allkeys-random or volatile-lru
${KV_FLAGS_USAGE}
${EDGE_FLAGS_USAGE}
  -h, --help          this text
`;

const f = parseFlagsOrExit(
  Deno.args,
  z.object({
    ...EDGE_FLAGS,
    ...KV_FLAGS,
    id: z.string({ error: "required" }).regex(/^[A-Za-z0-9_-]{1,64}$/),
    "data-dir": z.string({ error: "required" }).min(1),
    "storage-root": z.string().min(1).optional(),
    gfs: z.string().min(1).optional(),
    "gfs-token-file": z.string().min(1).optional(),
    "gfs-root": z.string().regex(
      /^\/[A-Za-z0-9_./-]*[A-Za-z0-9_-]$/,
      "an absolute GFS path",
    )
      .default("/tables"),
    http: hostPortFlag.default("127.0.0.1:0"),
    "memtable-bytes": z.coerce.number().int().min(1024).max(2 ** 30).default(
      4 << 20,
    ),
    "log-split-min-bytes": z.coerce.number().int().min(0).default(4 << 20),
    "log-gather-ms": z.coerce.number().min(0).max(1000).default(10),
    "compact-shared-ms": z.coerce.number().int().min(0).max(86_400_000)
      .default(60_000),
    "load-window-ms": z.coerce.number().int().min(100).max(600_000).default(
      10_000,
    ),
    resp: hostPortFlag.optional(),
    "resp-table": tableNameSchema.default("redis"),
    "resp-maxmemory": z.string().default("0").transform((v, ctx) => {
      const n = parseMemorySize(v);
      if (n === undefined) {
        ctx.addIssue({
          code: "custom",
          message: "a size: bytes, or with kb, mb, gb (100mb)",
        });
        return z.NEVER;
      }
      return n;
    }),
    "resp-maxmemory-policy": z.enum(EVICTION_POLICIES).default("noeviction"),
  }),
  HELP,
);

const dataDir = f["data-dir"];
const storageRoot = f["storage-root"] ?? join(dataDir, "..", "tablets");
await Deno.mkdir(dataDir, { recursive: true });
if (!f.gfs) await Deno.mkdir(storageRoot, { recursive: true });
const [hostname, port] = [
  f.http.slice(0, f.http.lastIndexOf(":")),
  Number(f.http.slice(f.http.lastIndexOf(":") + 1)),
];
const access = await resolveAccess({
  listenHost: hostname,
  secretsDir: f["auth-dir"] ?? dataDir,
  insecureNoAuth: f["insecure-no-auth"],
  allowedHosts: f["allowed-hosts"],
});
// --tls-cert: serve HTTPS; calls to kv and GFS trust --ca-cert (default:
// the --tls-cert itself).
const tls = await nodeTls(f).catch((e: Error) => {
  console.error(`tablet server ${f.id}: ${e.message}`); // a TLS file flag: no stack
  return Deno.exit(2);
});
const httpClient = nodeHttpClient(tls);
const kv = await kvClientFromFlags(f, httpClient);
const log = (line: string) => console.error(`tablet server ${f.id}: ${line}`);
const storage = { memtableBytes: f["memtable-bytes"] };
// The GFS token is read like any GFS client's: a file given on the command
// line (the cell's write.token), else the environment. Never logged.
const gfsToken = f["gfs-token-file"]
  ? await readSecretFile(f["gfs-token-file"])
  : Deno.env.get("STRATA_GFS_TOKEN");
const gfs = f.gfs
  ? new GfsClient(f.gfs.split(",").map((s) => s.trim()).filter(Boolean), {
    ...(gfsToken ? { token: gfsToken } : {}),
    httpClient,
    // The commit log asks the master after every block (seal and fences):
    // a kept-alive HTTP/1.1 client costs a quarter of fetch's CPU a call.
    http1: true,
  })
  : undefined;
let registration: Registration | undefined;
// The server's commit log in GFS, shared by its tablets: a new one per kv
// session (a server that lost its session may have had its old log
// sealed and split by then).
const logRoot = `${f["gfs-root"]}/${SERVER_LOG_DIR}`;
let serverLog: ServerLog | undefined;
const currentLog = (): ServerLog => {
  if (serverLog === undefined) {
    throw new Error("not registered: no commit log to write to");
  }
  return serverLog;
};
const host = new TabletHost(
  // Tables in memory storage mode open as memory tablets (../cache/).
  cacheTabletOpener(
    gfs
      ? openGfsTabletStorage(gfs, f["gfs-root"], f.id, currentLog, storage)
      : openTabletStorage(storageRoot, storage),
    {
      store: gfs
        ? gfsSnapshotStore(gfs, f["gfs-root"])
        : localSnapshotStore(storageRoot),
      self: () =>
        registration && { server: f.id, session: registration.session },
      isLive: async (owner) =>
        (await kv.get(serverKey(owner.server)))?.session === owner.session,
      log,
    },
  ),
  { windowMs: f["load-window-ms"] },
  f["compact-shared-ms"],
);

let notServing = "not registered in the kv service yet";
const app = createTabletServerApi({
  id: f.id,
  host,
  lease: () => registration?.lease,
  notServingReason: () => notServing,
  logStats: () => serverLog?.stats,
  stores: gfs
    ? gfsStoreFolder(gfs, f["gfs-root"])
    : localStoreFolder(storageRoot),
  ...(gfs
    ? {
      splitLogs: (server: string) =>
        splitDeadServerLogs(
          gfs,
          logRoot,
          server,
          async (session) =>
            (await kv.get(serverKey(server)))?.session === session,
          f["log-split-min-bytes"],
        ),
      sweepLogs: () =>
        sweepDeadLogs(
          gfs,
          f["gfs-root"],
          async (server, session) =>
            (await kv.get(serverKey(server)))?.session === session,
        ),
    }
    : {}),
}, { ...access, peerSecret: access.secrets?.peerSecret });
// Pub/sub rooms (../rooms/): their routes, and the kv directory they follow.
const rooms = attachRooms(app, {
  id: f.id,
  kv,
  host,
  access,
  registration: () => registration,
  ...(httpClient ? { httpClient } : {}),
  log,
});
// CRDT ranges (../crdt/): replicas in the data dir, served without the kv session.
const crdt = new CrdtService({
  id: f.id,
  dataDir,
  kv,
  peerToken: access.secrets?.peerSecret,
  ...(httpClient ? { httpClient } : {}),
  log,
});
await crdt.start();
app.route("/", createCrdtApi(crdt, f.id));
const listener = await serveHttp({
  hostname,
  port,
  handler: app.fetch,
  tls: tls.serve,
});
if (
  f.resp && access.auth === "off" &&
  !isLoopback(f.resp.slice(0, f.resp.lastIndexOf(":")))
) {
  console.error(
    `refusing to serve RESP on ${f.resp} without auth: --insecure-no-auth is only allowed on loopback`,
  );
  Deno.exit(2);
}
const resp = f.resp
  ? startRespServer({
    hostname: f.resp.slice(0, f.resp.lastIndexOf(":")),
    port: Number(f.resp.slice(f.resp.lastIndexOf(":") + 1)),
    serverId: f.id,
    auth: access.auth,
    ...(access.secrets ? { peerSecret: access.secrets.peerSecret } : {}),
    host,
    serving: () => registration?.lease.valid ?? false,
    map: new TabletMap(kv, f["resp-table"]),
    pubsub: rooms.rooms,
    // --tls-cert: RESP is TLS too (redis-cli --tls --cacert), and so are
    // the forwarding links between servers.
    ...(tls.serve ? { tls: { cert: tls.serve.cert, key: tls.serve.key } } : {}),
    ...(tls.serve && tls.caCerts ? { peerCaCerts: tls.caCerts } : {}),
    evictor: new Evictor({
      maxBytes: f["resp-maxmemory"],
      policy: f["resp-maxmemory-policy"],
    }),
    log,
  })
  : undefined;

let stopping = false;
const firstRegistration = Promise.withResolvers<void>();
/** Registers, and on losing the session drops every tablet and registers again. */
async function registerLoop(): Promise<void> {
  while (!stopping) {
    try {
      let lostWhy: string | undefined;
      const lost = Promise.withResolvers<void>();
      registration = await register({
        kv,
        id: f.id,
        url: listener.url,
        ...(resp ? { resp: resp.address } : {}),
        ttlMs: f["session-ttl-ms"],
        log,
        onLost: (why) => {
          lostWhy = why;
          lost.resolve();
        },
      });
      if (gfs) {
        serverLog = ServerLog.open(
          gfs,
          `${logRoot}/${f.id}/${registration.session}-${
            crypto.randomUUID().slice(0, 8)
          }`,
          {
            gather: f["log-gather-ms"] > 0
              ? { maxWaitMs: f["log-gather-ms"] }
              : false,
          },
        );
      }
      log(`registered with kv session ${registration.session}`);
      firstRegistration.resolve();
      // A log that failed (an append GFS gave up on, or sealed by a
      // splitter) takes no more writes: start over with a new session, a
      // new log, and the tablets reassigned.
      const watch = setInterval(() => {
        if (serverLog?.failed) {
          lostWhy = "its commit log in GFS failed";
          lost.resolve();
        }
      }, 1000);
      await lost.promise;
      clearInterval(watch);
      notServing = lostWhy ?? "the kv session was lost";
      log(`${notServing}: closing every tablet and registering again`);
      await host.closeAll();
      await serverLog?.close();
      serverLog = undefined;
      await registration.close().catch(() => {});
    } catch (e) {
      notServing = `cannot register in the kv service (${
        e instanceof Error ? e.message : e
      })`;
      log(notServing);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}
const loop = registerLoop();
// Ready once registered: the master learns of it and sends orders.
await firstRegistration.promise;
rooms.start(listener.url);
printReadyLine({
  id: f.id,
  http: listener.address,
  url: listener.url,
  ...(resp ? { resp: resp.address } : {}),
});

onShutdown(async () => {
  stopping = true;
  await rooms.stop();
  await listener.server.shutdown();
  await crdt.stop();
  await resp?.close();
  await host.closeAll();
  await serverLog?.close();
  await registration?.close();
  await Promise.race([loop, new Promise((r) => setTimeout(r, 1000))]);
});
