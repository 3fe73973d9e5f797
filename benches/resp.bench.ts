/**
 * bench:resp — the tables cell's RESP listener against `redis-server`, in
 * the same run, both driven by `redis-benchmark` (Debian's redis-tools):
 * SET and GET of 100-byte values at 50 clients over a keyspace of 100,000
 * keys, without and with pipelining (`-P 16`), each with `-a <token>`.
 *
 * - redis: `redis-server` on a free loopback port, no persistence
 *   (`--save "" --appendonly no`), a password (`--requirepass`).
 * - tables: a small cell of `stack_launcher.ts` without GFS (kv ×1, one
 *   master, tablet servers ×2 with `--resp`, each a process: fewer
 *   background processes on the 2-core machine than `deno task tables`), a
 *   table `redis` in `memory` storage mode (one tablet); redis-benchmark
 *   connects to the RESP listener of
 *   the server holding it, so every command goes straight to the memory
 *   tablet. A second pair of lines connects to another server, so every
 *   command is forwarded to the owner over the peer link.
 *
 * Lines alternate (redis, tables, redis, tables …) so a change in the
 * machine's load colours both. Goal: tables ≥ 0.5x redis on each of the
 * four owner lines. Writes benches/results/resp.json.
 */
import { startTablesStack } from "../apps/tables/stack_launcher.ts";
import { TablesClient } from "../apps/tables/client/tables_client.ts";
import { freePort, stopChild } from "@strata/edge";
import { QUICK, Suite } from "./harness.ts";

const N = QUICK ? 20_000 : 200_000;
const N_PIPELINED = QUICK ? 50_000 : 1_000_000;
const CLIENTS = 50;
const KEYSPACE = 100_000;

const suite = new Suite(
  "resp",
  "RESP listener of the tables cell (memory table) vs redis-server, both driven by redis-benchmark: SET/GET, 50 clients, 100-byte values, with and without -P 16",
);

async function which(cmd: string): Promise<boolean> {
  const r = await new Deno.Command("sh", {
    args: ["-c", `command -v ${cmd}`],
    stdout: "null",
    stderr: "null",
  }).output();
  return r.success;
}

async function version(cmd: string): Promise<string> {
  const r = await new Deno.Command(cmd, { args: ["--version"] }).output();
  return new TextDecoder().decode(r.stdout).trim();
}

/** One redis-benchmark run; ops/s and latencies per test (SET, GET). */
async function redisBenchmark(
  port: number,
  token: string,
  pipeline: number,
  n: number,
): Promise<
  Map<string, { rps: number; avg: number; p50: number; p99: number }>
> {
  const out = await new Deno.Command("redis-benchmark", {
    args: [
      "-h",
      "127.0.0.1",
      "-p",
      String(port),
      "-a",
      token,
      "-t",
      "set,get",
      "-c",
      String(CLIENTS),
      "-d",
      "100",
      "-n",
      String(n),
      "-r",
      String(KEYSPACE),
      "-P",
      String(pipeline),
      "--csv",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const rows = new Map<
    string,
    { rps: number; avg: number; p50: number; p99: number }
  >();
  for (const line of text.split("\n")) {
    const f = line.split(",").map((x) => x.replace(/"/g, ""));
    if (f.length < 7 || !/^\d/.test(f[1]!)) continue;
    rows.set(f[0]!, {
      rps: Number(f[1]),
      avg: Number(f[2]),
      p50: Number(f[4]),
      p99: Number(f[6]),
    });
  }
  if (!rows.has("SET") || !rows.has("GET")) {
    throw new Error(
      `redis-benchmark gave no figures: ${text}\n${
        new TextDecoder().decode(out.stderr)
      }`,
    );
  }
  return rows;
}

/**
 * CPU time (user + system) a process has used, in clock ticks, from
 * /proc (Linux); undefined elsewhere. Per op, it compares the servers'
 * work independently of how much CPU the shared machine gave them.
 */
async function cpuTicks(pid: number): Promise<number | undefined> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(f[11]) + Number(f[12]); // utime, stime (fields 14, 15)
  } catch {
    return undefined;
  }
}

async function clockTicksPerSecond(): Promise<number> {
  const r = await new Deno.Command("getconf", { args: ["CLK_TCK"] }).output()
    .catch(() => undefined);
  return Number(new TextDecoder().decode(r?.stdout).trim()) || 100;
}

if (!(await which("redis-server")) || !(await which("redis-benchmark"))) {
  console.log(
    "redis-server or redis-benchmark is missing: apt-get install -y redis-server redis-tools",
  );
  suite.metric("redis", "not installed");
  await suite.finish();
  Deno.exit(0);
}
suite.metric("redis version", await version("redis-server"));
suite.metric("machine", "shared 2-core machine (other sessions' tests ran)");

const dataRoot = await Deno.makeTempDir({ prefix: "bench_resp_" });
console.log(
  "starting the tables cell (kv ×1, one master, tablet servers ×2, no GFS)…",
);
const stack = await startTablesStack({
  dataRoot,
  kvNodes: 1,
  masters: 1,
  servers: 2,
  resp: true,
  sessionTtlMs: 10_000,
});
let redis: Deno.ChildProcess | undefined;
try {
  const tokens = stack.secrets.tokens;
  const admin = new TablesClient(stack.masterUrls(), { token: tokens.admin });
  await admin.createTable("redis", [{ name: "v" }], [], { storage: "memory" });
  let owner: string | null = null;
  for (let i = 0; i < 150 && !owner; i++) {
    owner = (await admin.tablets("redis"))[0]?.server ?? null;
    if (!owner) await new Promise((r) => setTimeout(r, 200));
  }
  if (!owner) throw new Error("the redis table's tablet was not assigned");
  await new Promise((r) => setTimeout(r, 1500)); // opened on its server
  const ownerResp = stack.servers.get(owner)!.resp!;
  const other = [...stack.servers.values()].find((s) => s.id !== owner)!;
  const tablesPort = Number(ownerResp.slice(ownerResp.lastIndexOf(":") + 1));
  const forwardPort = Number(
    other.resp!.slice(other.resp!.lastIndexOf(":") + 1),
  );
  suite.metric("tables owner server", owner);

  const redisPort = freePort();
  redis = new Deno.Command("redis-server", {
    args: [
      "--port",
      String(redisPort),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--requirepass",
      tokens.write,
      "--dir",
      dataRoot,
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  for (let i = 0; i < 100; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port: redisPort })).close();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  // Warm-up (not recorded): the JIT and the key space (SET fills the
  // 100,000 keys) on both sides before the first measured line.
  for (const port of [redisPort, tablesPort, forwardPort]) {
    await redisBenchmark(port, tokens.write, 16, QUICK ? 20_000 : 200_000);
  }
  const lines: [string, number, number, string][] = [
    ["", 1, N, "redis"],
    ["", 1, N, "tables"],
    [" -P 16", 16, N_PIPELINED, "redis"],
    [" -P 16", 16, N_PIPELINED, "tables"],
    ["", 1, N, "tables, forwarded"],
    [" -P 16", 16, N_PIPELINED, "tables, forwarded"],
  ];
  const hz = await clockTicksPerSecond();
  /** Server CPU µs per op (SET and GET of a line together), by line. */
  const cpuPerOp = new Map<string, number>();
  for (const [label, p, n, who] of lines) {
    const port = who === "redis"
      ? redisPort
      : who === "tables"
      ? tablesPort
      : forwardPort;
    // The processes doing the work: redis-server; the owner; the
    // forwarding server and the owner.
    const pids = who === "redis"
      ? [redis.pid]
      : who === "tables"
      ? [stack.servers.get(owner)!.process.pid]
      : [stack.servers.get(owner)!.process.pid, other.process.pid];
    const cpu = async () => {
      let sum = 0;
      for (const pid of pids) {
        const t = await cpuTicks(pid);
        if (t === undefined) return undefined;
        sum += t;
      }
      return sum;
    };
    console.log(`redis-benchmark${label} against ${who}…`);
    const cpuBefore = await cpu();
    const rows = await redisBenchmark(port, tokens.write, p, n);
    const cpuAfter = await cpu();
    if (cpuBefore !== undefined && cpuAfter !== undefined) {
      const us = (cpuAfter - cpuBefore) / hz * 1e6 / (2 * n);
      cpuPerOp.set(`${label}|${who}`, us);
      suite.metric(`server CPU µs/op${label} · ${who}`, Number(us.toFixed(2)));
    }
    for (const [test, r] of rows) {
      const group = `${test} ×${CLIENTS} clients${label}`;
      suite.record({
        group,
        name: who,
        opsPerSec: r.rps,
        meanNs: r.avg * 1e6,
        p50Ns: r.p50 * 1e6,
        p99Ns: r.p99 * 1e6,
        samples: n,
        bytes: 100,
      });
      console.log(
        `  ${group} ${who}: ${
          Math.round(r.rps)
        } ops/s, p50 ${r.p50} ms, p99 ${r.p99} ms`,
      );
    }
  }
  for (const test of ["SET", "GET"]) {
    for (const label of ["", " -P 16"]) {
      const group = `${test} ×${CLIENTS} clients${label}`;
      suite.compare(
        `${group}: throughput tables ÷ redis`,
        "throughput",
        suite.get(group, "tables").opsPerSec,
        suite.get(group, "redis").opsPerSec,
        { op: ">=", value: 0.5 },
      );
      suite.compare(
        `${group}: throughput tables (forwarded by a non-owner) ÷ redis`,
        "throughput",
        suite.get(group, "tables, forwarded").opsPerSec,
        suite.get(group, "redis").opsPerSec,
      );
    }
  }
  for (const label of ["", " -P 16"]) {
    const r = cpuPerOp.get(`${label}|redis`);
    const t = cpuPerOp.get(`${label}|tables`);
    if (r && t) {
      suite.compare(
        `SET+GET${label}: server CPU per op, tables ÷ redis (lower is better)`,
        "cpu",
        t,
        r,
      );
    }
  }
} finally {
  if (redis) await stopChild(redis, false, 3000);
  await stack.stop();
  await Deno.remove(dataRoot, { recursive: true }).catch(() => {});
}
console.log(`wrote ${await suite.finish()}`);
