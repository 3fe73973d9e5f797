import { join } from "node:path";
import { ProcessError, spawnUntilReady } from "@strata/process";
import {
  type ClusterSecrets,
  loadOrCreateSecrets,
  tlsClient,
} from "@strata/edge";
import { SearchError } from "./search_error.ts";

/** A child service process that reported its port. */
export interface ServiceProcess {
  child: Deno.ChildProcess;
  port: number;
  url: string;
  /** The ready line the process printed. */
  ready: Record<string, unknown>;
}

/**
 * Starts `deno run -A script ...args` and waits (at most `timeoutMs`) for
 * its `{"ready":true,"port":N}` line on stdout; later stdout is drained.
 * @throws SearchError `unavailable` when it exits or times out first (the child is killed).
 */
export async function spawnService(
  script: URL,
  args: string[],
  timeoutMs = 30_000,
  runFlags: readonly string[] = [],
): Promise<ServiceProcess> {
  try {
    const p = await spawnUntilReady(
      ["run", "-A", ...runFlags, script.pathname, ...args],
      (line) => {
        const j = line as Record<string, unknown> | null;
        return j && j.ready === true && typeof j.port === "number"
          ? j
          : undefined;
      },
      { name: script.pathname, timeoutMs },
    );
    const port = p.ready.port as number;
    const scheme = p.ready.scheme === "https" ? "https" : "http";
    return {
      child: p.child,
      port,
      url: `${scheme}://127.0.0.1:${port}`,
      ready: p.ready,
    };
  } catch (e) {
    if (e instanceof ProcessError) {
      throw new SearchError("unavailable", e.message);
    }
    throw e;
  }
}

/** Options of {@link startCluster}. */
export interface ClusterOptions {
  shards: number;
  replicas: number;
  /** Parent data directory; replica (s, r) uses `<dataDir>/shard-s-r`. */
  dataDir: string;
  /** Replicas that must confirm a write (default all). */
  ack?: number;
  flushDocs?: number;
  /** "never" skips fsync (tests, demos on tmpfs); default "always". */
  sync?: "always" | "never";
  /** Extra `deno run` flags for the shard processes (e.g. `--cpu-prof-dir=DIR` to profile them). */
  shardRunFlags?: string[];
  /** Extra `deno run` flags for the coordinator process. */
  coordinatorRunFlags?: string[];
  /** Per-replica query timeout of the coordinator (ms). */
  timeoutMs?: number;
  /** Missed documents queued per replica before it is repaired by anti-entropy instead. */
  maxQueuedDocs?: number;
  /**
   * Start every process with `--insecure-no-auth` (no tokens, no peer
   * secret). Never the default.
   */
  insecureNoAuth?: boolean;
  /**
   * Serve every process over HTTPS with these PEM files; the coordinator
   * trusts this certificate when it calls the shards.
   */
  tls?: { certFile: string; keyFile: string };
}

/** A running cluster: shard replica processes and a coordinator. */
export interface Cluster {
  /** Base URL of the coordinator's public API. */
  url: string;
  /**
   * The tokens (admin, write, read) and peer secret in `dataDir`, shared
   * by every process (`--auth-dir`); undefined with `insecureNoAuth`.
   */
  secrets?: ClusterSecrets;
  /** With `tls`: a fetch client trusting the cluster's certificate (closed by stop). */
  httpClient?: Deno.HttpClient;
  coordinator: ServiceProcess;
  /** replicas[s][r]; null once killed. */
  replicas: Array<Array<ServiceProcess | null>>;
  /** kill -9 one replica. */
  kill(shard: number, replica: number): Promise<void>;
  /** Starts a killed replica again on its data directory and port (it reloads its segments and log). */
  restart(shard: number, replica: number): Promise<ServiceProcess>;
  /**
   * kill -9 the coordinator and start it again on the same port with the
   * same flags (its --state-dir says which replicas were behind).
   */
  restartCoordinator(): Promise<ServiceProcess>;
  /** Stops every process (SIGTERM, then SIGKILL after a grace period). */
  stop(): Promise<void>;
}

/** `--auth-dir DIR` (or `--insecure-no-auth` when asked for) and the TLS files. */
function authArgs(
  secrets: ClusterSecrets | undefined,
  tls: ClusterOptions["tls"],
): string[] {
  return [
    ...(secrets ? ["--auth-dir", secrets.dir] : ["--insecure-no-auth"]),
    ...(tls ? ["--tls-cert", tls.certFile, "--tls-key", tls.keyFile] : []),
  ];
}

function shardArgs(
  o: ClusterOptions,
  s: number,
  r: number,
  port: number,
  secrets: ClusterSecrets | undefined,
): string[] {
  return [
    ...authArgs(secrets, o.tls),
    "--dir",
    join(o.dataDir, `shard-${s}-${r}`),
    "--shard",
    String(s),
    "--replica",
    String(r),
    "--port",
    String(port),
    "--flush-docs",
    String(o.flushDocs ?? 5000),
    "--sync",
    o.sync ?? "always",
  ];
}

const SHARD_SCRIPT = new URL("./shard_server.ts", import.meta.url);
const COORDINATOR_SCRIPT = new URL("./coordinator.ts", import.meta.url);

async function stopProcess(p: ServiceProcess, graceMs = 5000): Promise<void> {
  try {
    p.child.kill("SIGTERM");
  } catch {
    return;
  }
  const t = setTimeout(() => {
    try {
      p.child.kill("SIGKILL");
    } catch { /* gone */ }
  }, graceMs);
  await p.child.status;
  clearTimeout(t);
}

/**
 * Starts `shards × replicas` shard server processes and a coordinator on
 * loopback (free ports), each a separate `deno run` process. The cluster's
 * secrets are generated in `dataDir` on first start (mode 0600) and every
 * process gets `--auth-dir dataDir`.
 */
export async function startCluster(o: ClusterOptions): Promise<Cluster> {
  const secrets = o.insecureNoAuth
    ? undefined
    : await loadOrCreateSecrets(o.dataDir);
  const replicas: Array<Array<ServiceProcess | null>> = [];
  let coordinator: ServiceProcess | undefined;
  let coordinatorArgs: string[] = [];
  const all = () => [
    ...replicas.flat().filter((p): p is ServiceProcess => p !== null),
    ...(coordinator ? [coordinator] : []),
  ];
  try {
    const starts: Array<Promise<ServiceProcess>> = [];
    for (let s = 0; s < o.shards; s++) {
      for (let r = 0; r < o.replicas; r++) {
        starts.push(
          spawnService(
            SHARD_SCRIPT,
            shardArgs(o, s, r, 0, secrets),
            undefined,
            o.shardRunFlags,
          ),
        );
      }
    }
    const settled = await Promise.allSettled(starts);
    for (let s = 0; s < o.shards; s++) {
      replicas.push(
        settled.slice(s * o.replicas, (s + 1) * o.replicas).map((x) =>
          x.status === "fulfilled" ? x.value : null
        ),
      );
    }
    const bad = settled.find((x) => x.status === "rejected");
    if (bad) throw (bad as PromiseRejectedResult).reason;
    const shardsFlag = replicas.map((reps) => reps.map((p) => p!.url).join(","))
      .join(";");
    coordinatorArgs = [
      ...authArgs(secrets, o.tls),
      "--shards",
      shardsFlag,
      "--state-dir",
      join(o.dataDir, "coordinator"),
      ...(o.ack ? ["--ack", String(o.ack)] : []),
      ...(o.timeoutMs ? ["--timeout-ms", String(o.timeoutMs)] : []),
      ...(o.maxQueuedDocs
        ? ["--max-queued-docs", String(o.maxQueuedDocs)]
        : []),
    ];
    coordinator = await spawnService(
      COORDINATOR_SCRIPT,
      coordinatorArgs,
      undefined,
      o.coordinatorRunFlags,
    );
  } catch (e) {
    await Promise.all(all().map((p) => stopProcess(p, 1000)));
    throw e;
  }
  const ports = replicas.map((reps) => reps.map((p) => p!.port));
  const httpClient = o.tls ? await tlsClient(o.tls.certFile) : undefined;
  const cluster: Cluster = {
    url: coordinator.url,
    secrets,
    httpClient,
    coordinator,
    replicas,
    async restartCoordinator() {
      const old = coordinator;
      coordinator = undefined;
      if (old) {
        try {
          old.child.kill("SIGKILL");
        } catch { /* gone */ }
        await old.child.status;
      }
      coordinator = await spawnService(
        COORDINATOR_SCRIPT,
        [...coordinatorArgs, "--port", String(old?.port ?? 0)],
        undefined,
        o.coordinatorRunFlags,
      );
      cluster.coordinator = coordinator;
      return coordinator;
    },
    async kill(shard, replica) {
      const p = replicas[shard]?.[replica];
      if (!p) return;
      replicas[shard]![replica] = null;
      try {
        p.child.kill("SIGKILL");
      } catch { /* gone */ }
      await p.child.status;
    },
    async restart(shard, replica) {
      if (replicas[shard]?.[replica]) {
        throw new SearchError(
          "bad_request",
          `replica ${shard}/${replica} is running`,
        );
      }
      const p = await spawnService(
        SHARD_SCRIPT,
        shardArgs(o, shard, replica, ports[shard]![replica]!, secrets),
      );
      replicas[shard]![replica] = p;
      return p;
    },
    async stop() {
      await Promise.all(all().map((p) => stopProcess(p)));
      httpClient?.close();
    },
  };
  return cluster;
}
