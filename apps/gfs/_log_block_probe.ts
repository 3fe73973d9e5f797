/**
 * Probe (not a test): the GFS side of a tables server log's blocks, alone.
 * Starts 3 replicated masters and 3 chunkservers as processes (the tables
 * stack's cell), then `LOGS` writers (default 3, one per tablet server),
 * each doing what `ServerLog` does per block, one block at a time: a
 * record append of `BLOCK_BYTES` (default 7,500: ~49 puts) to its own log
 * file, then one `exists` of the log's seal and `FENCES` (default 2) fence
 * paths. Runs `SECS` seconds (default 6), `ROUNDS` times (default 2), and
 * prints per round the blocks/s and the CPU time per block of this process
 * (the GFS client of the tablet servers), each chunkserver (with its data
 * port appends and applies: the primary takes appends, a secondary applies;
 * and its journal syncs, and how many of them ran inline)
 * and each master (the leader answers every call), from /proc (user +
 * system; `CPU=user` or `CPU=sys` for one), and each chunkserver's
 * context switches per block (all threads). `EXISTS=0` leaves the exists
 * calls out, `APPEND=0` the appends; `HTTP1=1` makes the client's master calls with its `http1`
 * option (as a tablet server does). `GAP_MS` makes each log pause that
 * long between blocks (in the tables stack a log's blocks come tens of
 * milliseconds apart: the chunkservers idle between them).
 *
 *   deno run -A apps/gfs/_log_block_probe.ts
 *   STRATA_CPU_PROF_DIR=/tmp/p deno run -A apps/gfs/_log_block_probe.ts
 *
 * Linux only (/proc).
 */
import { join } from "node:path";
import { z } from "zod";
import { GfsClient } from "./client/client.ts";
import { startCluster } from "./process_cluster.ts";
import { contextSwitches as switches } from "../../benches/proc_cpu.ts";

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const TICKS = 100;
const MODE = Deno.env.get("CPU") ?? "all";
const SECS = Number(Deno.env.get("SECS") ?? 6);
const ROUNDS = Number(Deno.env.get("ROUNDS") ?? 2);
const LOGS = Number(Deno.env.get("LOGS") ?? 3);
const BLOCK_BYTES = Number(Deno.env.get("BLOCK_BYTES") ?? 7500);
const FENCES = Number(Deno.env.get("FENCES") ?? 2);
const WARMUP = Number(Deno.env.get("WARMUP") ?? 6);
const EXISTS = Deno.env.get("EXISTS") !== "0";
/** `APPEND=0`: the exists calls alone (their cost on the client and the leader). */
const APPEND = Deno.env.get("APPEND") !== "0";
const HTTP1 = Deno.env.get("HTTP1") === "1";
const GAP_MS = Number(Deno.env.get("GAP_MS") ?? 0);
/** Each log's pause between blocks (`GAP_MS`, default 0: none). */
const gap = () =>
  GAP_MS > 0 ? new Promise((r) => setTimeout(r, GAP_MS)) : undefined;

/** CPU time of a process so far, ms. */
function cpuMs(pid: number | "self"): number {
  const f = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1]!
    .split(" ");
  const user = Number(f[11]), sys = Number(f[12]);
  const t = MODE === "user" ? user : MODE === "sys" ? sys : user + sys;
  return t / TICKS * 1000;
}

const root = await Deno.makeTempDir({ prefix: "gfs-log-block-" });
const cluster = await startCluster({
  dataDir: join(root, "cell"),
  masters: 3,
  chunkservers: 3,
});
const token = cluster.secrets!.tokens.admin;

/** A chunkserver's data port appends (as primary) and applies (as secondary). */
async function portCalls(
  url: string,
): Promise<[number, number, number, number]> {
  const res = await fetch(`${url}/metrics`, {
    headers: { authorization: `Bearer ${token}` },
  });
  const text = await res.text();
  const get = (name: string) =>
    Number(text.match(new RegExp(`${name}\\{[^}]*\\} (\\d+)`))?.[1] ?? 0);
  const calls = get("gfs_chunkserver_data_port_calls_total");
  const applies = get("gfs_chunkserver_data_port_applies_total");
  return [
    calls - applies,
    applies,
    get("gfs_chunkserver_journal_syncs_total"),
    get("gfs_chunkserver_journal_inline_syncs_total"),
  ];
}

try {
  const cs = cluster.chunkservers;
  const client = new GfsClient(cluster.masterUrls, { token, http1: HTTP1 });
  const block = new Uint8Array(BLOCK_BYTES).fill(7);
  const logs = Array.from({ length: LOGS }, (_, i) => `/probe/log${i}`);
  const checks = logs.map((l) => [
    `${l}.sealed`,
    ...Array.from({ length: FENCES }, (_, k) => `/probe/fence${k}.${l}`),
  ]);
  // Every log on all 3 chunkservers: wait until the master knows them.
  for (let i = 0; i < 200; i++) {
    const { chunkservers } = await client.masters.call(
      "/v1/chunkservers",
      z.object({ chunkservers: z.array(z.object({ alive: z.boolean() })) }),
    );
    if (chunkservers.filter((c) => c.alive).length >= cs.length) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  // The leader serves from its read lease only once its clock guard
  // trusts the peers' clocks (some seconds after start); until then it
  // confirms every call with a ReadIndex round, which a long-running cell
  // (as under a tables stack) does not. Wait for it (up to 60 s).
  for (let i = 0; i < 600; i++) {
    const serving = await Promise.all(cluster.masterUrls.map(async (u) => {
      const res = await fetch(`${u}/v1/master`, {
        headers: { authorization: `Bearer ${token}` },
      });
      return (await res.json()).serving === true;
    }));
    if (serving.includes(true)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  // Warm-up (`WARMUP` s, default 6): connections, leases, and the masters' clock guard,
  // which trusts its peers' clocks only after a few seconds of samples
  // (until then the leader confirms every call with a ReadIndex round).
  const w0 = performance.now();
  await Promise.all(logs.map(async (l, i) => {
    while (performance.now() - w0 < WARMUP * 1000) {
      if (APPEND) await client.append(l, block);
      if (EXISTS) await client.exists(checks[i]!);
    }
  }));
  const pids = [...cs, ...cluster.masters].map((c) => c.process.pid);
  const r3 = (x: number) => Math.round(x * 1000) / 1000;
  for (let round = 1; round <= ROUNDS; round++) {
    const p0 = await Promise.all(cs.map((c) => portCalls(c.url)));
    const c0 = pids.map(cpuMs), s0 = cpuMs("self");
    const x0 = cs.map((c) => switches(c.process.pid));
    let n = 0;
    const t0 = performance.now();
    await Promise.all(logs.map(async (l, i) => {
      while (performance.now() - t0 < SECS * 1000) {
        if (APPEND) await client.append(l, block);
        if (EXISTS) await client.exists(checks[i]!);
        n++;
        await gap();
      }
    }));
    const seconds = (performance.now() - t0) / 1000;
    const p1 = await Promise.all(cs.map((c) => portCalls(c.url)));
    const per = pids.map((p, i) => (cpuMs(p) - c0[i]!) / n);
    const sw = cs.map((c, i) => (switches(c.process.pid) - x0[i]!) / n);
    const clientMs = (cpuMs("self") - s0) / n;
    console.log(JSON.stringify({
      round,
      blocksPerSecond: Math.round(n / seconds),
      blockBytes: BLOCK_BYTES,
      exists: EXISTS,
      append: APPEND,
      http1: HTTP1,
      gapMs: GAP_MS,
      cpu: MODE,
      cpuMsPerBlock: {
        client: r3(clientMs),
        chunkservers: per.slice(0, cs.length).map((v, i) =>
          `${r3(v)} (appends ${p1[i]![0] - p0[i]![0]}, applies ${
            p1[i]![1] - p0[i]![1]
          }, journal syncs ${p1[i]![2] - p0[i]![2]}, inline ${
            p1[i]![3] - p0[i]![3]
          })`
        ),
        masters: per.slice(cs.length).map(r3),
        chunkserverSwitchesPerBlock: sw.map((v) => Math.round(v * 10) / 10),
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
