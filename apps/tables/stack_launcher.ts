/**
 * Starts a whole local tables cell as separate OS processes: a kv cluster
 * (strata's Chubby, through `apps/kv`'s launcher), optionally a GFS cell
 * (`apps/gfs`'s launcher) holding the tablets, tables masters and tablet
 * servers, each waiting for its ready line. Used by
 * `deno task tables` and the multi-process tests. The tables tokens are
 * generated in `<dataRoot>/auth` (mode 0600) on first start and shared by
 * every tables process; kv keeps its own in `<dataRoot>/kv`.
 */
import {
  type ClusterSecrets,
  loadOrCreateSecrets,
  readyLine,
  spawnUntilReady,
  stopChild,
  tokenFile,
} from "@strata/edge";
import {
  type LocalCluster,
  startLocalCluster,
} from "@strata/kv/cluster_launcher";
import {
  type Cluster as GfsCluster,
  startCluster as startGfsCell,
} from "@strata/gfs";

const MASTER_MAIN =
  new URL("./master/master_main.ts", import.meta.url).pathname;
/**
 * V8 flags of every tablet server: the young generation pinned at 32 MiB
 * a semi-space, and the old generation's first collection limit at 64 MiB.
 * V8 starts a process with a 1 MiB young generation that grows only as the
 * process lives, and a small old-generation limit: a tablet server making
 * ~25 KB of garbage per put (the request, its JSON, the answer) then ran
 * 26–30 scavenges and a mark-compact per server in a 5 s line of puts at
 * 256 clients, and its first lines of puts cost more CPU than its later
 * ones (README, "Puts: the tablet servers' heap"). Costs up to ~100 MiB
 * more memory per server.
 */
export const SERVER_V8_FLAGS: readonly string[] = [
  "--min-semi-space-size=32",
  "--initial-old-space-size=64",
];

const SERVER_MAIN = new URL("./server/tablet_server_main.ts", import.meta.url)
  .pathname;

/** A running tables process. */
export interface TablesProcess {
  kind: "master" | "server";
  id: string;
  /** `host:port`. */
  http: string;
  /** `http://host:port`. */
  url: string;
  /** A tablet server's RESP `host:port`, when started with `resp`. */
  resp?: string;
  process: Deno.ChildProcess;
}

/** Options of {@link startTablesStack}. */
export interface TablesStackOptions {
  dataRoot: string;
  /** kv nodes (default 3). */
  kvNodes?: number;
  /** Masters (default 2). */
  masters?: number;
  /** Tablet servers (default 3). */
  servers?: number;
  /** kv HTTP ports (default free ports). */
  kvPorts?: number[];
  /** Master HTTP ports (default free ports). */
  masterPorts?: number[];
  /** Tablet server HTTP ports (default free ports). */
  serverPorts?: number[];
  /** kv session TTL of masters and tablet servers, ms (default 10 000). */
  sessionTtlMs?: number;
  /** Master reconcile period, ms (default 1000). */
  reconcileMs?: number;
  /** Masters split tablets past this many bytes (default 0: never by themselves). */
  splitBytes?: number;
  /** Tablet memtable size, bytes. */
  memtableBytes?: number;
  /** Extra flags for every master (e.g. the split-by-load and merge policy). */
  masterFlags?: string[];
  /** Extra flags for every tablet server (e.g. `--load-window-ms`). */
  serverFlags?: string[];
  /**
   * Keep tablets in a GFS cell started here (masters, chunkservers,
   * chunk size); without it tablets live in `<dataRoot>/tablets`.
   */
  gfs?: {
    masters: number;
    chunkservers: number;
    chunkBytes?: number;
    /** Extra GFS master flags (e.g. `deadAfterMs` in tests). */
    master?: Record<string, string | number>;
    /** Extra flags per chunkserver (e.g. `heartbeatMs` in tests). */
    chunkserver?: (i: number) => Record<string, string | number>;
  };
  /**
   * Use this running kv cluster instead of starting one: its nodes'
   * `host:port` and a file holding its write token (the playground shares
   * its kv cluster this way).
   */
  useKv?: { endpoints: string[]; tokenFile: string };
  /**
   * Keep tablets in this running GFS cell instead of starting one: its
   * masters' URLs and a file holding its write token.
   */
  useGfs?: { masterUrls: string[]; tokenFile?: string };
  /**
   * Tablet servers also speak RESP (`--resp`): on these ports, or free
   * ports when true.
   */
  resp?: boolean | number[];
  /** Pass the processes' stderr through (default: discard). */
  inheritStderr?: boolean;
  /**
   * Run everything over TLS with these PEM files: the kv cluster and the
   * GFS cell started here, and every tables process, serve HTTPS with them
   * and trust them when calling each other.
   */
  tls?: { certFile: string; keyFile: string };
}

/** A running stack. */
export interface TablesStack {
  /** The kv cluster started here (none with `useKv`). */
  kv?: LocalCluster;
  /** The GFS cell, when tablets live in GFS. */
  gfs?: GfsCluster;
  /** Tables tokens (admin, write, read) in `<dataRoot>/auth`. */
  secrets: ClusterSecrets;
  masters: Map<string, TablesProcess>;
  servers: Map<string, TablesProcess>;
  /** Every master URL, in id order. */
  masterUrls(): string[];
  /** Sends a signal to a process (SIGKILL waits for the exit). */
  signal(
    kind: "master" | "server",
    id: string,
    signal: Deno.Signal,
  ): Promise<void>;
  /** Starts a stopped process again with its flags. */
  restart(kind: "master" | "server", id: string): Promise<TablesProcess>;
  /** Stops everything. */
  stop(): Promise<void>;
}

/** Starts the stack. @throws when a process does not come up (the rest are stopped). */
export async function startTablesStack(
  o: TablesStackOptions,
): Promise<TablesStack> {
  await Deno.mkdir(o.dataRoot, { recursive: true });
  const secrets = await loadOrCreateSecrets(`${o.dataRoot}/auth`);
  const kv = o.useKv ? undefined : await startLocalCluster({
    size: o.kvNodes ?? 3,
    dataRoot: `${o.dataRoot}/kv`,
    ...(o.kvPorts ? { httpPorts: o.kvPorts } : {}),
    inheritStderr: o.inheritStderr,
    tls: o.tls,
  });
  let gfs: GfsCluster | undefined;
  if (o.gfs && !o.useGfs) {
    try {
      gfs = await startGfsCell({
        dataDir: `${o.dataRoot}/gfs`,
        masters: o.gfs.masters,
        chunkservers: o.gfs.chunkservers,
        master: {
          ...o.gfs.master,
          ...(o.gfs.chunkBytes ? { chunkBytes: o.gfs.chunkBytes } : {}),
        },
        ...(o.gfs.chunkserver ? { chunkserver: o.gfs.chunkserver } : {}),
        tls: o.tls,
      });
    } catch (e) {
      await kv?.stop();
      throw e;
    }
  }
  // URLs, not host:port: they say https when kv serves TLS.
  const kvEndpoints = kv
    ? [...kv.nodes.values()].sort((a, b) => a.id - b.id).map((n) => n.url)
    : o.useKv!.endpoints;
  const common = [
    "--kv",
    kvEndpoints.join(","),
    "--kv-token-file",
    o.useKv?.tokenFile ?? tokenFile(`${o.dataRoot}/kv`, "write"),
    "--auth-dir",
    secrets.dir,
    "--session-ttl-ms",
    String(o.sessionTtlMs ?? 10_000),
    ...(o.tls
      ? ["--tls-cert", o.tls.certFile, "--tls-key", o.tls.keyFile]
      : []),
  ];
  // Tablets in GFS: the cell started here, or the running one given.
  const gfsArgs = gfs
    ? [
      "--gfs",
      gfs.masterUrls.join(","),
      ...(gfs.secrets
        ? ["--gfs-token-file", tokenFile(gfs.secrets.dir, "write")]
        : []),
    ]
    : o.useGfs
    ? [
      "--gfs",
      o.useGfs.masterUrls.join(","),
      ...(o.useGfs.tokenFile ? ["--gfs-token-file", o.useGfs.tokenFile] : []),
    ]
    : undefined;
  const masters = new Map<string, TablesProcess>();
  const servers = new Map<string, TablesProcess>();
  const args = new Map<string, string[]>();

  const spawn = async (
    kind: "master" | "server",
    id: string,
    argv: string[],
  ) => {
    args.set(`${kind}/${id}`, argv);
    const p = await spawnUntilReady(
      [
        "run",
        "-A",
        ...(kind === "server"
          ? [`--v8-flags=${SERVER_V8_FLAGS.join(",")}`]
          : []),
        ...argv,
      ],
      (line) => {
        const m = readyLine(line, ["id", "http", "url"]);
        return m && {
          http: m.http,
          url: m.url,
          ...(typeof m.resp === "string" ? { resp: m.resp } : {}),
        };
      },
      {
        name: `tables ${kind} ${id}`,
        timeoutMs: 60_000,
        stderr: o.inheritStderr ? "inherit" : "null",
      },
    );
    const proc: TablesProcess = {
      kind,
      id,
      http: p.ready.http,
      url: p.ready.url,
      ...(p.ready.resp ? { resp: p.ready.resp } : {}),
      process: p.child,
    };
    (kind === "master" ? masters : servers).set(id, proc);
    return proc;
  };

  const stop = async () => {
    const all = [...servers.values(), ...masters.values()];
    // A profiled process (STRATA_CPU_PROF_DIR) writes its profile on exit.
    const graceMs = Deno.env.get("STRATA_CPU_PROF_DIR") ? 30_000 : 3000;
    await Promise.all(all.map((p) => stopChild(p.process, false, graceMs)));
    servers.clear();
    masters.clear();
    await Promise.all([kv?.stop(), gfs?.stop()]);
  };

  try {
    const nm = o.masters ?? 2;
    const ns = o.servers ?? 3;
    await Promise.all([
      ...Array.from({ length: nm }, (_, i) =>
        spawn("master", `m${i + 1}`, [
          MASTER_MAIN,
          "--id",
          `m${i + 1}`,
          "--data-dir",
          `${o.dataRoot}/master-m${i + 1}`,
          "--http",
          `127.0.0.1:${o.masterPorts?.[i] ?? 0}`,
          "--reconcile-ms",
          String(o.reconcileMs ?? 1000),
          "--split-bytes",
          String(o.splitBytes ?? 0),
          ...(o.masterFlags ?? []),
          ...common,
        ])),
      ...Array.from({ length: ns }, (_, i) =>
        spawn("server", `ts${i + 1}`, [
          SERVER_MAIN,
          "--id",
          `ts${i + 1}`,
          "--data-dir",
          `${o.dataRoot}/server-ts${i + 1}`,
          ...(gfsArgs ?? ["--storage-root", `${o.dataRoot}/tablets`]),
          "--http",
          `127.0.0.1:${o.serverPorts?.[i] ?? 0}`,
          ...(o.memtableBytes
            ? ["--memtable-bytes", String(o.memtableBytes)]
            : []),
          ...(o.serverFlags ?? []),
          ...(o.resp
            ? [
              "--resp",
              `127.0.0.1:${Array.isArray(o.resp) ? o.resp[i] ?? 0 : 0}`,
            ]
            : []),
          ...common,
        ])),
    ]);
  } catch (e) {
    await stop();
    throw e;
  }

  return {
    ...(kv ? { kv } : {}),
    ...(gfs ? { gfs } : {}),
    secrets,
    masters,
    servers,
    masterUrls: () =>
      [...masters.values()].sort((a, b) => a.id < b.id ? -1 : 1).map((m) =>
        m.url
      ),
    async signal(kind, id, signal) {
      const map = kind === "master" ? masters : servers;
      const p = map.get(id);
      if (!p) return;
      try {
        p.process.kill(signal);
      } catch { /* gone */ }
      if (signal === "SIGKILL") {
        await p.process.status;
        map.delete(id);
      }
    },
    restart(kind, id) {
      const argv = args.get(`${kind}/${id}`);
      if (!argv) throw new Error(`no ${kind} ${id}`);
      return spawn(kind, id, argv);
    },
    stop,
  };
}
