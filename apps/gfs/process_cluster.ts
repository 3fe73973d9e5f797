import { join } from "node:path";
import {
  freePort,
  ProcessError,
  RestartBudget,
  restartOnExit,
  type RestartPolicy,
  spawnUntilReady,
} from "@strata/process";
import {
  authHeaders,
  type ClusterSecrets,
  loadOrCreateSecrets,
  tlsClient,
} from "@strata/edge";
import { GfsError } from "./shared/gfs_error.ts";

/** A child process that printed its `listening` line. */
export interface ChildService {
  /** What the child runs. */
  role: "master" | "chunkserver";
  /** Base URL it serves on. */
  url: string;
  /** Chunkserver id (empty for a master). */
  id: string;
  /** The child. */
  process: Deno.ChildProcess;
  /** Sends SIGTERM (SIGKILL with `hard`) and waits for exit. */
  stop(hard?: boolean): Promise<void>;
  /** True once {@link stop} was called (the exit was asked for). */
  readonly stopAsked: boolean;
}

const HERE = new URL(".", import.meta.url).pathname;

/**
 * Starts a gfs process (`master_main.ts` or `chunkserver_main.ts`) with
 * the given flags (`true`: a switch without a value) and waits for its
 * JSON `listening` line on stdout.
 * @throws GfsError `unavailable` when it exits or stays silent for 60 s.
 */
export async function spawnService(
  role: "master" | "chunkserver",
  flags: Record<string, string | number | true>,
): Promise<ChildService> {
  const args = [
    "run",
    "-A",
    join(HERE, role === "master" ? "master_main.ts" : "chunkserver_main.ts"),
  ];
  for (const [k, v] of Object.entries(flags)) {
    const flag = `--${k.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())}`;
    // A negative number (`--bulk-port -1`) would read as an option: `=`.
    args.push(
      ...(v === true
        ? [flag]
        : typeof v === "number" && v < 0
        ? [`${flag}=${v}`]
        : [flag, String(v)]),
    );
  }
  let p;
  try {
    p = await spawnUntilReady(
      args,
      (line) => {
        const l = line as { url?: unknown; id?: unknown };
        return typeof l?.url === "string"
          ? { url: l.url, id: typeof l.id === "string" ? l.id : "" }
          : undefined;
      },
      { name: role, timeoutMs: 60_000 },
    );
  } catch (e) {
    if (e instanceof ProcessError) throw new GfsError("unavailable", e.message);
    throw e;
  }
  let stopAsked = false;
  return {
    role,
    url: p.ready.url,
    id: p.ready.id,
    process: p.child,
    stop: (hard) => {
      stopAsked = true;
      return p.stop(hard);
    },
    get stopAsked() {
      return stopAsked;
    },
  };
}

/** Options of {@link startCluster}. */
export interface ClusterOptions {
  /** Root data directory (masters in `master/` or `master-<id>/`, servers in `cs<i>/`). */
  dataDir: string;
  /** Chunkservers to start (default 3). */
  chunkservers?: number;
  /**
   * Master replicas (default 1: a single master on a local op log; 3 or 5:
   * a Raft group where the leader serves and followers redirect).
   */
  masters?: number;
  /** Extra master flags. */
  master?: Record<string, string | number>;
  /** Extra flags per chunkserver (index → flags). */
  chunkserver?: (i: number) => Record<string, string | number>;
  /**
   * Start every process with `--insecure-no-auth` (no tokens, no peer
   * secret). Never the default.
   */
  insecureNoAuth?: boolean;
  /**
   * Serve every process over HTTPS (and the masters' raft over TLS) with
   * these PEM files; each process trusts this certificate when it calls
   * the others (`--tls-cert/--tls-key`).
   */
  tls?: { certFile: string; keyFile: string };
  /**
   * Act as a supervisor: a process that exits without `stop` (a crash, or
   * a master's exit code 74 after its Raft replica halted on a failed
   * disk write) is reported and started again on its data directory and
   * port, as this policy says (default: after 1 s, at most 5 times a
   * minute, then left down). Off by default: tests stop processes on
   * purpose.
   */
  supervise?: RestartPolicy;
}

/** Masters plus chunkservers as real processes. */
export interface Cluster {
  /** The first master (the only one unless `masters` > 1). */
  readonly master: ChildService;
  /** Every master replica, by index (id = index + 1). */
  masters: ChildService[];
  /** Every master's base URL (give all of them to clients). */
  masterUrls: string[];
  /** Every chunkserver, by index. */
  chunkservers: ChildService[];
  /**
   * The tokens (admin, write, read) and peer secret in the data root,
   * shared by every process (`--auth-dir`); undefined with `insecureNoAuth`.
   */
  secrets?: ClusterSecrets;
  /** With `tls`: a fetch client trusting the cell's certificate (closed by stop). */
  httpClient?: Deno.HttpClient;
  /** The base URL of the master that serves now (waits up to `timeoutMs`). */
  leaderUrl(timeoutMs?: number): Promise<string>;
  /** Index of the serving master (waits up to `timeoutMs`). */
  leaderIndex(timeoutMs?: number): Promise<number>;
  /** Restarts a stopped chunkserver `i` on its data directory. */
  restartChunkserver(i: number): Promise<ChildService>;
  /** Restarts master `i` (default 0) on the same ports and data directory. */
  restartMaster(hard?: boolean, i?: number): Promise<ChildService>;
  /** Starts master `i` again after its process was stopped. */
  startMaster(i: number): Promise<ChildService>;
  /** Stops everything (SIGTERM, then SIGKILL after 10 s). */
  stop(): Promise<void>;
}

/**
 * Waits for every start; each one that succeeded goes into `started` even
 * when another failed, so the caller can stop it instead of leaking it.
 * @throws the first failure.
 */
async function allStarted(
  starts: Promise<ChildService>[],
  started: ChildService[],
): Promise<ChildService[]> {
  const settled = await Promise.allSettled(starts);
  for (const r of settled) if (r.status === "fulfilled") started.push(r.value);
  const failed = settled.find((r) => r.status === "rejected");
  if (failed) throw failed.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<ChildService>).value);
}

/**
 * Starts masters and chunkservers as child processes on 127.0.0.1. The
 * cell's secrets are generated in `dataDir` on first start (mode 0600)
 * and every process gets `--auth-dir dataDir`.
 */
export async function startCluster(o: ClusterOptions): Promise<Cluster> {
  const n = o.masters ?? 1;
  const secrets = o.insecureNoAuth
    ? undefined
    : await loadOrCreateSecrets(o.dataDir);
  const auth: Record<string, string | true> = {
    ...(secrets ? { authDir: secrets.dir } : { insecureNoAuth: true }),
    ...(o.tls ? { tlsCert: o.tls.certFile, tlsKey: o.tls.keyFile } : {}),
  };
  const httpClient = o.tls ? await tlsClient(o.tls.certFile) : undefined;
  const masterFlags: Array<Record<string, string | number | true>> = [];
  if (n === 1) {
    masterFlags.push({
      dataDir: join(o.dataDir, "master"),
      port: 0,
      ...auth,
      ...o.master,
    });
  } else {
    const httpPorts = Array.from(
      { length: n },
      (_, i) => i === 0 && o.master?.port ? Number(o.master.port) : freePort(),
    );
    const raftPorts = Array.from({ length: n }, () => freePort());
    const peers = httpPorts.map((p, i) =>
      `${i + 1}=127.0.0.1:${raftPorts[i]}/127.0.0.1:${p}`
    ).join(",");
    for (let i = 0; i < n; i++) {
      masterFlags.push({
        dataDir: join(o.dataDir, `master-${i + 1}`),
        ...auth,
        ...o.master,
        port: httpPorts[i]!,
        id: i + 1,
        peers,
      });
    }
  }
  const started: ChildService[] = [];
  try {
    const masters = await allStarted(
      masterFlags.map((f) => spawnService("master", f)),
      started,
    );
    const masterUrls = masters.map((m) => m.url);
    const csFlags = (i: number) => ({
      dataDir: join(o.dataDir, `cs${i}`),
      master: masterUrls.join(","),
      id: `cs${i}`,
      ...auth,
      ...(o.master?.chunkBytes ? { chunkBytes: o.master.chunkBytes } : {}),
      ...o.chunkserver?.(i),
    });
    const chunkservers = await allStarted(
      Array.from(
        { length: o.chunkservers ?? 3 },
        (_, i) => spawnService("chunkserver", csFlags(i)),
      ),
      started,
    );
    let stopping = false;
    const budgets = new Map<string, RestartBudget>();
    /** Restarts `list[i]` when it exits unasked (with `supervise`). */
    const supervise = (
      list: ChildService[],
      i: number,
      name: string,
      start: () => Promise<ChildService>,
    ) => {
      const policy = o.supervise;
      const svc = list[i]!;
      if (!policy) return;
      if (!budgets.has(name)) budgets.set(name, new RestartBudget(policy));
      restartOnExit(
        svc.process,
        {
          name,
          asked: () => stopping || svc.stopAsked || list[i] !== svc,
          restart: start,
        },
        budgets.get(name)!,
        policy,
      );
    };
    const leaderIndex = async (timeoutMs = 30_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        for (let i = 0; i < masters.length; i++) {
          try {
            const res = await fetch(`${masterUrls[i]}/v1/master`, {
              headers: authHeaders(secrets?.tokens.read),
              client: httpClient,
              signal: AbortSignal.timeout(1000),
            });
            const body = await res.json() as { serving?: boolean };
            if (body.serving === true) return i;
          } catch { /* down or busy: ask the next */ }
        }
        if (Date.now() > deadline) {
          throw new GfsError("unavailable", "no master serves");
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    const startMaster = async (i: number) => {
      const m = await spawnService("master", {
        ...masterFlags[i]!,
        port: Number(new URL(masterUrls[i]!).port),
      });
      masters[i] = m;
      supervise(masters, i, `gfs master ${i + 1}`, () => startMaster(i));
      return m;
    };
    const startChunkserver = async (i: number, port: number) => {
      const cs = await spawnService("chunkserver", { ...csFlags(i), port });
      chunkservers[i] = cs;
      supervise(
        chunkservers,
        i,
        `gfs chunkserver cs${i}`,
        () => startChunkserver(i, port),
      );
      return cs;
    };
    masters.forEach((_, i) =>
      supervise(masters, i, `gfs master ${i + 1}`, () => startMaster(i))
    );
    chunkservers.forEach((cs, i) =>
      supervise(
        chunkservers,
        i,
        `gfs chunkserver cs${i}`,
        () => startChunkserver(i, Number(new URL(cs.url).port)),
      )
    );
    const cluster: Cluster = {
      get master() {
        return masters[0]!;
      },
      masters,
      masterUrls,
      chunkservers,
      secrets,
      httpClient,
      leaderIndex,
      async leaderUrl(timeoutMs) {
        return masterUrls[await leaderIndex(timeoutMs)]!;
      },
      async restartChunkserver(i) {
        const prev = chunkservers[i]!;
        await prev.stop();
        return await startChunkserver(i, Number(new URL(prev.url).port));
      },
      async restartMaster(hard = false, i = 0) {
        await masters[i]!.stop(hard);
        return await startMaster(i);
      },
      startMaster,
      async stop() {
        stopping = true;
        await Promise.allSettled(
          [...masters, ...chunkservers].map((s) => s.stop()),
        );
        httpClient?.close();
      },
    };
    return cluster;
  } catch (e) {
    await Promise.allSettled(started.map((s) => s.stop(true)));
    httpClient?.close();
    throw e;
  }
}
