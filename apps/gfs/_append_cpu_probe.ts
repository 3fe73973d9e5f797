/**
 * Probe (not a test): where a small record append's CPU goes. Starts a
 * master and 3 chunkservers as processes (replication 3, as `bench:gfs`),
 * runs 1 appender and then 16 (1 KiB records, `SECS` seconds each, default
 * 6) and prints per run: records/s, records per batch (from the
 * secondaries' `gfs_chunkserver_data_port_applies_total`) and the CPU time
 * per record of the client (this process), each chunkserver and the master,
 * read from /proc (user + system; `CPU=user` or `CPU=sys` for one).
 *
 *   deno run -A apps/gfs/_append_cpu_probe.ts
 *   STRATA_CPU_PROF_DIR=/tmp/p deno run -A --cpu-prof-dir=/tmp/p/client apps/gfs/_append_cpu_probe.ts
 *
 * With `STRATA_CPU_PROF_DIR` every child writes a V8 CPU profile (see
 * @strata/process's `spawnUntilReady`) when the cluster stops.
 * Linux only (/proc).
 */
import { join } from "node:path";
import { GfsClient } from "./client/client.ts";
import { startCluster } from "./process_cluster.ts";

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const TICKS = 100;
const MODE = Deno.env.get("CPU") ?? "all";
const SECS = Number(Deno.env.get("SECS") ?? 6);

/** CPU time of a process so far, ms. */
function cpuMs(pid: number | "self"): number {
  const f = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1]!
    .split(" ");
  const user = Number(f[11]), sys = Number(f[12]);
  const t = MODE === "user" ? user : MODE === "sys" ? sys : user + sys;
  return t / TICKS * 1000;
}

const root = await Deno.makeTempDir({ prefix: "gfs-append-cpu-" });
const cluster = await startCluster({
  dataDir: join(root, "cell"),
  chunkservers: 3,
  master: { chunkBytes: 64 * 2 ** 20 },
  chunkserver: () => ({ scrubPauseMs: 0 }),
});
const token = cluster.secrets!.tokens.admin;

/** Record-append batches applied on the secondaries (each batch counts twice). */
async function applies(): Promise<number> {
  let n = 0;
  for (const c of cluster.chunkservers) {
    const res = await fetch(`${c.url}/metrics`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const m = (await res.text()).match(
      /data_port_applies_total\{[^}]*\} (\d+)/,
    );
    n += Number(m?.[1] ?? 0);
  }
  return n;
}

try {
  const client = new GfsClient(cluster.master.url, { token });
  const record = new Uint8Array(1024).fill(7);
  for (let i = 0; i < 50; i++) await client.append("/probe/log", record);
  const pids = [...cluster.chunkservers, cluster.master].map((c) =>
    c.process.pid
  );
  for (const appenders of [1, 16]) {
    const a0 = await applies();
    const c0 = pids.map(cpuMs), s0 = cpuMs("self");
    let n = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: appenders }, async () => {
      while (performance.now() - t0 < SECS * 1000) {
        await client.append("/probe/log", record);
        n++;
      }
    }));
    const seconds = (performance.now() - t0) / 1000;
    const per = pids.map((p, i) => (cpuMs(p) - c0[i]!) / n);
    const clientMs = (cpuMs("self") - s0) / n;
    const batches = (await applies() - a0) / 2;
    const r3 = (x: number) => Math.round(x * 1000) / 1000;
    console.log(JSON.stringify({
      appenders,
      recordsPerSecond: Math.round(n / seconds),
      recordsPerBatch: r3(n / batches),
      cpu: MODE,
      cpuMsPerRecord: {
        client: r3(clientMs),
        chunkservers: per.slice(0, 3).map(r3),
        master: r3(per[3]!),
        total: r3(clientMs + per.reduce((a, b) => a + b, 0)),
      },
      loadavg: Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3)
        .join(" "),
    }));
  }
  await client.close();
} finally {
  await cluster.stop();
  await Deno.remove(root, { recursive: true });
}
