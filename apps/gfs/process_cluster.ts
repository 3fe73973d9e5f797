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
  /** Root data directory (master in `master/`, servers in `cs<i>/`). */
  dataDir: string;
  /** Chunkservers to start (default 3). */
  chunkservers?: number;
  /** Extra master flags. */
  master?: Record<string, string | number>;
  /** Extra flags per chunkserver (index → flags). */
  chunkserver?: (i: number) => Record<string, string | number>;
}

/** A master plus chunkservers as real processes. */
export interface Cluster {
  master: ChildService;
  chunkservers: ChildService[];
  /** Restarts a stopped chunkserver `i` on its data directory. */
  restartChunkserver(i: number): Promise<ChildService>;
  /** Restarts the master on the same port and data directory. */
  restartMaster(hard?: boolean): Promise<ChildService>;
  /** Stops everything (SIGTERM, then SIGKILL after 10 s). */
  stop(): Promise<void>;
}

/** Starts a master and chunkservers as child processes on 127.0.0.1. */
export async function startCluster(o: ClusterOptions): Promise<Cluster> {
  const masterFlags = {
    dataDir: join(o.dataDir, "master"),
    port: 0,
    ...o.master,
  };
  const started: ChildService[] = [];
  try {
    let master = await spawnService("master", masterFlags);
    started.push(master);
    const csFlags = (i: number) => ({
      dataDir: join(o.dataDir, `cs${i}`),
      master: master.url,
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
    const cluster: Cluster = {
      get master() {
        return master;
      },
      chunkservers,
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
      async restartMaster(hard = false) {
        await master.stop(hard);
        master = await spawnService("master", {
          ...masterFlags,
          port: Number(new URL(master.url).port),
        });
        return master;
      },
      async stop() {
        await Promise.allSettled(
          [master, ...chunkservers].map((s) => s.stop()),
        );
      },
    };
    return cluster;
  } catch (e) {
    await Promise.allSettled(started.map((s) => s.stop(true)));
    throw e;
  }
}
