import { join } from "node:path";
import { GfsError } from "./gfs_error.ts";

/** A child process that printed its `listening` line. */
export interface ChildService {
  role: "master" | "chunkserver";
  /** Base URL it serves on. */
  url: string;
  /** Chunkserver id (empty for a master). */
  id: string;
  /** The child. */
  process: Deno.ChildProcess;
  /** Sends SIGTERM (SIGKILL with `hard`) and waits for exit. */
  stop(hard?: boolean): Promise<void>;
}

const HERE = new URL(".", import.meta.url).pathname;

/**
 * Starts a gfs process (`master_main.ts` or `chunkserver_main.ts`) with
 * the given flags and waits for its JSON `listening` line on stdout.
 * @throws GfsError `unavailable` when it exits or stays silent for 60 s.
 */
export async function spawnService(
  role: "master" | "chunkserver",
  flags: Record<string, string | number>,
): Promise<ChildService> {
  const args = [
    "run",
    "-A",
    join(HERE, role === "master" ? "master_main.ts" : "chunkserver_main.ts"),
  ];
  for (const [k, v] of Object.entries(flags)) {
    args.push(
      `--${k.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())}`,
      String(v),
    );
  }
  const child = new Deno.Command(Deno.execPath(), {
    args,
    stdout: "piped",
    stderr: "inherit",
    stdin: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  const deadline = Date.now() + 60_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    for (;;) {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new GfsError("unavailable", `${role} did not start within 60 s`),
            ),
          deadline - Date.now(),
        );
      });
      const { done, value } = await Promise.race([reader.read(), timeout]);
      clearTimeout(timer);
      if (done) {
        throw new GfsError("unavailable", `${role} exited before listening`);
      }
      buf += value;
      const nl = buf.indexOf("\n");
      if (nl < 0) continue;
      const line = JSON.parse(buf.slice(0, nl)) as {
        url?: string;
        id?: string;
      };
      if (typeof line.url !== "string") {
        throw new GfsError(
          "unavailable",
          `${role} printed ${buf.slice(0, nl)}`,
        );
      }
      // Keep draining stdout so the child never blocks on a full pipe.
      (async () => {
        try {
          while (!(await reader.read()).done) { /* drain */ }
        } catch { /* closed */ }
      })();
      let exited = false;
      const status = child.status.then((s) => {
        exited = true;
        return s;
      });
      return {
        role,
        url: line.url,
        id: line.id ?? "",
        process: child,
        async stop(hard = false) {
          if (!exited) {
            try {
              child.kill(hard ? "SIGKILL" : "SIGTERM");
            } catch { /* already gone */ }
          }
          const t = setTimeout(() => {
            try {
              child.kill("SIGKILL");
            } catch { /* gone */ }
          }, 10_000);
          await status;
          clearTimeout(t);
        },
      };
    }
  } catch (e) {
    clearTimeout(timer);
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await child.status;
    throw e;
  }
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
}

/** Masters plus chunkservers as real processes. */
export interface Cluster {
  /** The first master (the only one unless `masters` > 1). */
  readonly master: ChildService;
  /** Every master replica, by index (id = index + 1). */
  masters: ChildService[];
  /** Every master's base URL (give all of them to clients). */
  masterUrls: string[];
  chunkservers: ChildService[];
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

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Starts masters and chunkservers as child processes on 127.0.0.1. */
export async function startCluster(o: ClusterOptions): Promise<Cluster> {
  const n = o.masters ?? 1;
  const masterFlags: Array<Record<string, string | number>> = [];
  if (n === 1) {
    masterFlags.push({
      dataDir: join(o.dataDir, "master"),
      port: 0,
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
        ...o.master,
        port: httpPorts[i]!,
        id: i + 1,
        peers,
      });
    }
  }
  const started: ChildService[] = [];
  try {
    const masters = await Promise.all(
      masterFlags.map((f) => spawnService("master", f)),
    );
    started.push(...masters);
    const masterUrls = masters.map((m) => m.url);
    const csFlags = (i: number) => ({
      dataDir: join(o.dataDir, `cs${i}`),
      master: masterUrls.join(","),
      id: `cs${i}`,
      ...(o.master?.chunkBytes ? { chunkBytes: o.master.chunkBytes } : {}),
      ...o.chunkserver?.(i),
    });
    const chunkservers = await Promise.all(
      Array.from(
        { length: o.chunkservers ?? 3 },
        (_, i) => spawnService("chunkserver", csFlags(i)),
      ),
    );
    started.push(...chunkservers);
    const leaderIndex = async (timeoutMs = 30_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        for (let i = 0; i < masters.length; i++) {
          try {
            const res = await fetch(`${masterUrls[i]}/v1/master`, {
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
      return m;
    };
    const cluster: Cluster = {
      get master() {
        return masters[0]!;
      },
      masters,
      masterUrls,
      chunkservers,
      leaderIndex,
      async leaderUrl(timeoutMs) {
        return masterUrls[await leaderIndex(timeoutMs)]!;
      },
      async restartChunkserver(i) {
        const prev = chunkservers[i]!;
        await prev.stop();
        const cs = await spawnService("chunkserver", {
          ...csFlags(i),
          port: Number(new URL(prev.url).port),
        });
        chunkservers[i] = cs;
        return cs;
      },
      async restartMaster(hard = false, i = 0) {
        await masters[i]!.stop(hard);
        return await startMaster(i);
      },
      startMaster,
      async stop() {
        await Promise.allSettled(
          [...masters, ...chunkservers].map((s) => s.stop()),
        );
      },
    };
    return cluster;
  } catch (e) {
    await Promise.allSettled(started.map((s) => s.stop(true)));
    throw e;
  }
}
