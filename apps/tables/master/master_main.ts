/**
 * `master_main.ts`: one tables master process. Serves the tablet map at
 * once (read from kv), campaigns on the kv lock `tables/master`, and acts
 * as the master while it holds it. Prints `{"event":"ready","id","http"}`.
 */
import { z } from "zod";
import {
  EDGE_FLAGS,
  EDGE_FLAGS_USAGE,
  hostPortFlag,
  nodeHttpClient,
  nodeTls,
  onShutdown,
  parseFlagsOrExit,
  printReadyLine,
  resolveAccess,
  serveHttp,
} from "@strata/edge";
import {
  KV_FLAGS,
  KV_FLAGS_USAGE,
  kvClientFromFlags,
} from "../shared/kv_flags.ts";
import { MasterService } from "./master_service.ts";
import { createMasterApi } from "./master_api.ts";
import { DEFAULT_LOAD_POLICY } from "./load_plan.ts";

const HELP = `usage: master_main.ts --id ID --kv LIST --data-dir DIR [options]

A tables master: one is active (it holds the kv lock tables/master), the others wait.
  --id ID             this master's id
  --data-dir DIR      this master's files (and, by default, its tokens)
  --http H:P          HTTP address to bind (default 127.0.0.1:0)
  --reconcile-ms N    period of the reconcile tick (default 1000): a full pass runs at a tick
                      only after a change in kv under tables/, a pass that had work, or ...
  --full-pass-ms N    ... every N ms anyway (default 5000, shortened to a third of
                      --split-after-ms / --merge-after-ms when those are on, and
                      to 1000 with --split-bytes)
  --split-bytes N     split a tablet larger than N bytes (default 0: only on request)
  --sweep-ms N        delete retired tablets' stores nobody names, at most every N ms (default 30000)
  --log-split-wait-ms N  wait at most N ms for a dead server's log split before reassigning its tablets (default 5000)
  --split-ops N       split a tablet serving N writes+reads/s or more ... (default 2000; 0: never)
  --split-after-ms N  ... for N ms on end, at the median of its recent keys (default 30000)
  --merge-bytes N     merge adjacent tablets holding N bytes or less together ... (default 0: never)
  --merge-ops N       ... each under N writes+reads/s ... (default 1)
  --merge-after-ms N  ... for N ms on end (default 60000)
  --balance-factor F  move a tablet off a server whose load is over F x the mean (default 1.5; 0: off)
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
    http: hostPortFlag.default("127.0.0.1:0"),
    "reconcile-ms": z.coerce.number().int().min(50).max(60_000).default(1000),
    "full-pass-ms": z.coerce.number().int().min(50).max(600_000).optional(),
    "split-bytes": z.coerce.number().int().min(0).default(0),
    "log-split-wait-ms": z.coerce.number().int().min(0).max(60_000).default(
      5_000,
    ),
    "sweep-ms": z.coerce.number().int().min(100).max(86_400_000).default(
      30_000,
    ),
    "split-ops": z.coerce.number().min(0).default(DEFAULT_LOAD_POLICY.splitOps),
    "split-after-ms": z.coerce.number().int().min(0).default(
      DEFAULT_LOAD_POLICY.splitAfterMs,
    ),
    "merge-bytes": z.coerce.number().int().min(0).default(
      DEFAULT_LOAD_POLICY.mergeBytes,
    ),
    "merge-ops": z.coerce.number().min(0).default(DEFAULT_LOAD_POLICY.mergeOps),
    "merge-after-ms": z.coerce.number().int().min(0).default(
      DEFAULT_LOAD_POLICY.mergeAfterMs,
    ),
    "balance-factor": z.coerce.number().min(0).default(
      DEFAULT_LOAD_POLICY.balanceFactor,
    ),
  }),
  HELP,
);

await Deno.mkdir(f["data-dir"], { recursive: true });
const hostname = f.http.slice(0, f.http.lastIndexOf(":"));
const port = Number(f.http.slice(f.http.lastIndexOf(":") + 1));
const access = await resolveAccess({
  listenHost: hostname,
  secretsDir: f["auth-dir"] ?? f["data-dir"],
  insecureNoAuth: f["insecure-no-auth"],
  allowedHosts: f["allowed-hosts"],
});
// --tls-cert: serve HTTPS; calls to kv and the tablet servers trust
// --ca-cert (default: the --tls-cert itself).
const tls = await nodeTls(f).catch((e: Error) => {
  console.error(`tables master ${f.id}: ${e.message}`); // a TLS file flag: no stack
  return Deno.exit(2);
});
const httpClient = nodeHttpClient(tls);
const kv = await kvClientFromFlags(f, httpClient);
let url = "";
const master = new MasterService({
  id: f.id,
  get url() {
    return url;
  },
  kv,
  ttlMs: f["session-ttl-ms"],
  serverToken: access.secrets?.tokens.admin,
  httpClient,
  reconcileMs: f["reconcile-ms"],
  ...(f["full-pass-ms"] === undefined ? {} : { fullPassMs: f["full-pass-ms"] }),
  splitBytes: f["split-bytes"],
  sweepMs: f["sweep-ms"],
  logSplitWaitMs: f["log-split-wait-ms"],
  loadPolicy: {
    splitOps: f["split-ops"],
    splitAfterMs: f["split-after-ms"],
    mergeBytes: f["merge-bytes"],
    mergeOps: f["merge-ops"],
    mergeAfterMs: f["merge-after-ms"],
    balanceFactor: f["balance-factor"],
  },
  log: (line) => console.error(`tables master ${f.id}: ${line}`),
});
const listener = await serveHttp({
  hostname,
  port,
  handler: createMasterApi(f.id, master, access).fetch,
  tls: tls.serve,
});
url = listener.url;
master.start();
printReadyLine({ id: f.id, http: listener.address, url: listener.url });
onShutdown(async () => {
  await master.stop();
  await listener.server.shutdown();
});
