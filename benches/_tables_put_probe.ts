/**
 * Probe: only bench:tables' put lines (1, 16, 256 clients; tables with 3
 * tablet servers on GFS against a 3-member etcd, interleaved, 5 s each),
 * for quick A/B runs of the tablet servers' write path. Prints ops/s and
 * the tables ÷ etcd ratio per line, the CPU time each side's processes
 * (by component) and the load generator spent per put, and the tablet
 * servers' log blocks in the tables line and their records per block (the
 * group commit's size); writes no results file.
 * `deno run -A benches/_tables_put_probe.ts [rounds]`; `PROBE_CLIENTS=256`
 * (comma-separated) runs only those lines, `PROBE_SECONDS` sets their
 * length (default 5). Each line prints its window in /proc/uptime seconds,
 * the clock of V8's CPU profiles (`STRATA_CPU_PROF_DIR`), so a profile can
 * be cut to one line. `PROBE_CS=1` also prints, per log block of the
 * tables line, each chunkserver's CPU, context switches (every thread) and
 * what it served (its `/metrics` counters: data-port appends and applies,
 * bulk-port calls, journal syncs, writes, reads). `PROBE_ATTACH` is a
 * command run for the tables line with `{pid}` replaced by chunkserver
 * `PROBE_ATTACH_CS`'s (default 0; `all`: every chunkserver's, comma-separated) and ended with SIGINT, e.g.
 * `PROBE_ATTACH="strace -c -f -o /tmp/s.txt -p {pid}"`.
 * `STRATA_V8_FLAGS` (`packages/process`) gives the stack's processes extra
 * V8 flags by kind of process, for A/B runs of flags.
 */
import { Buffer } from "node:buffer";
import { startTablesStack } from "@strata/tables/stack_launcher";
import { TablesClient } from "@strata/tables/client";
import { startEtcdCluster } from "../scripts/etcd_cluster.ts";
import { runLoad } from "./http_load.ts";
import { Http1Client } from "@strata/edge";
import { contextSwitches as switches, cpuMs } from "./proc_cpu.ts";

const ROUNDS = Number(Deno.args[0] ?? 1);
const CLIENTS = (Deno.env.get("PROBE_CLIENTS") ?? "1,16,256").split(",").map(
  Number,
);
const LINE_MS = 1000 * Number(Deno.env.get("PROBE_SECONDS") ?? 5);
/** Seconds since boot (/proc/uptime): CLOCK_MONOTONIC, as V8's profiles stamp samples. */
const uptime = async () =>
  Number((await Deno.readTextFile("/proc/uptime")).split(" ")[0]);
const TABLE = "bench";
const CS = Deno.env.get("PROBE_CS") === "1";
const ATTACH = Deno.env.get("PROBE_ATTACH");
const ATTACH_CS = Deno.env.get("PROBE_ATTACH_CS") ?? "0";
/** CPU ms of a process's threads so far, by thread name (/proc task comm). */
function threadCpu(pid: number): Record<string, number> {
  const by: Record<string, number> = {};
  for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      const s = Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/stat`);
      const name = s.slice(s.indexOf("(") + 1, s.lastIndexOf(")"))
        .replace(/[ -]?\d+$/, "");
      const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
      // utime + stime in USER_HZ ticks: 100 a second in every Linux /proc.
      by[name] = (by[name] ?? 0) + (Number(f[11]) + Number(f[12])) * 10;
    } catch {
      // The thread ended.
    }
  }
  return by;
}

const KEYS = 10_000;
const value = new Uint8Array(100).fill(0x61);
const key8 = (n: number) => `r${String(n % KEYS).padStart(7, "0")}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const b64 = (s: string | Uint8Array) =>
  Buffer.from(typeof s === "string" ? new TextEncoder().encode(s) : s)
    .toString("base64");

const dataRoot = await Deno.makeTempDir({ prefix: "strata-put-probe-" });
const stack = await startTablesStack({
  dataRoot,
  masters: 2,
  servers: 3,
  sessionTtlMs: 4000,
  reconcileMs: 500,
  gfs: { masters: 3, chunkservers: 3 },
  inheritStderr: Deno.env.get("PROBE_STDERR") === "1",
});
const etcd = await startEtcdCluster(3);
/** Puts on both sides go through it, as in bench:tables. */
const http1 = new Http1Client();
try {
  const t = stack.secrets.tokens;
  const client = new TablesClient(stack.masterUrls(), {
    token: t.write,
    timeoutMs: 60_000,
    http1,
  });
  const admin = new TablesClient(stack.masterUrls(), {
    token: t.admin,
    timeoutMs: 60_000,
  });
  const splits = Array.from(
    { length: 5 },
    (_, i) => key8(Math.round(((i + 1) * KEYS) / 6)),
  );
  await admin.createTable(TABLE, [{ name: "f" }], splits);
  const servers = [...stack.servers.keys()].sort();
  // Two tablets a server (which two does not matter: the keys are
  // uniform). Waiting for one exact placement often never settled (the
  // master's balancer moves tablets too) and burned all 600 tries.
  for (let i = 0; i < 600; i++) {
    const ts = await admin.tablets(TABLE).catch(() => []);
    if (ts.length === 6 && ts.every((x) => x.url !== null)) {
      const held = new Map(servers.map((s) => [s, [] as string[]]));
      for (const x of ts) held.get(x.server ?? "")?.push(x.id);
      const byLoad = [...held].sort((a, b) => b[1].length - a[1].length);
      const [most, least] = [byLoad[0]!, byLoad[byLoad.length - 1]!];
      if (most[1].length <= 2 && least[1].length >= 2) break;
      await admin.moveTablet(most[1][0]!, least[0]).catch(() => {});
    }
    await sleep(200);
  }
  let n = 0;
  const urls = etcd.clientUrls;
  const valueB64 = b64(value);
  const targets = {
    tables: async (k: string) => {
      await client.put(TABLE, k, "f", "v", value);
      return true;
    },
    etcd: async (k: string) => {
      const res = await http1.request(`${urls[n++ % urls.length]}/v3/kv/put`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ key: b64(k), value: valueB64 }),
        timeoutMs: 60_000,
      });
      return res.status >= 200 && res.status < 300;
    },
  };
  const pids: Record<string, Record<string, number[]>> = {
    tables: {
      servers: [...stack.servers.values()].map((p) => p.process.pid),
      masters: [...stack.masters.values()].map((p) => p.process.pid),
      kv: [...(stack.kv?.nodes.values() ?? [])].map((n) => n.process.pid),
      chunkservers: stack.gfs!.chunkservers.map((c) => c.process.pid),
      "GFS masters": stack.gfs!.masters.map((m) => m.process.pid),
    },
    etcd: { etcd: etcd.pids },
  };
  /**
   * The tablet servers' log counters so far (`/v1/status`), summed: blocks,
   * records and the group commit's (see `server_log.ts`'s
   * GroupCommitStats).
   */
  const logTotals = async () => {
    const sum: Record<string, number> = { blocks: 0, records: 0 };
    for (const p of stack.servers.values()) {
      const res = await fetch(`${p.url}/v1/status`, {
        headers: { authorization: `Bearer ${t.read}` },
      }).catch(() => undefined);
      const log = res?.ok ? (await res.json()).log : await res?.body?.cancel();
      for (const [k, v] of Object.entries(log ?? {})) {
        if (typeof v === "number") sum[k] = (sum[k] ?? 0) + v;
      }
    }
    return sum;
  };
  /** Each chunkserver's CPU ms, context switches and `/metrics` counters. */
  const csSample = () =>
    Promise.all(stack.gfs!.chunkservers.map(async (c) => {
      const res = await fetch(`${c.url}/metrics`, {
        headers: { authorization: `Bearer ${stack.gfs!.secrets!.tokens.read}` },
      });
      const m: Record<string, number> = {};
      for (
        const x of (await res.text()).matchAll(
          /^gfs_chunkserver_(\w+)_total\{[^}]*\} (\d+)/gm,
        )
      ) m[x[1]!] = Number(x[2]);
      return {
        cpu: await cpuMs([c.process.pid]),
        sw: switches(c.process.pid),
        th: threadCpu(c.process.pid),
        m,
      };
    }));
  const cpu = (name: string) =>
    Promise.all(
      [...Object.values(pids[name]!), [Deno.pid]].map((p) => cpuMs(p)),
    );
  // Warm-up: connections, tablet locations.
  await runLoad(16, 1000, (w, s) => targets.tables(key8(w * 7919 + s)));
  // What each side burns doing nothing (heartbeats, leases, passes).
  for (const name of Object.keys(pids)) {
    const [c0, t0] = [await cpu(name), performance.now()];
    await sleep(5000);
    const [c1, t1] = [await cpu(name), performance.now()];
    const per = c1.slice(0, -1).map((v, i) =>
      (v - c0[i]!) / ((t1 - t0) / 1000)
    );
    console.log(
      `idle ${name} CPU ms/s: ${per.reduce((a, b) => a + b, 0).toFixed(0)} (${
        Object.keys(pids[name]!).map((p, i) => `${p} ${per[i]!.toFixed(0)}`)
          .join(", ")
      })`,
    );
  }
  for (let r = 0; r < ROUNDS; r++) {
    for (const c of CLIENTS) {
      const ops: Record<string, number> = {};
      const cpuLines: string[] = [];
      for (const [name, put] of Object.entries(targets)) {
        const l0 = name === "tables" ? await logTotals() : undefined;
        const k0 = name === "tables" && CS ? await csSample() : undefined;
        const attach = name === "tables" && ATTACH !== undefined
          ? new Deno.Command(ATTACH.split(" ")[0]!, {
            args: ATTACH.split(" ").slice(1).map((a) =>
              a.replaceAll(
                "{pid}",
                ATTACH_CS === "all"
                  ? stack.gfs!.chunkservers.map((c) => c.process.pid).join(",")
                  : String(
                    stack.gfs!.chunkservers[Number(ATTACH_CS)]!.process.pid,
                  ),
              )
            ),
            stdout: "null",
            stderr: "null",
          }).spawn()
          : undefined;
        const [c0, u0] = [await cpu(name), await uptime()];
        const res = await runLoad(
          c,
          LINE_MS,
          (w, s) => put(key8(w * 7919 + s)),
        );
        const [c1, u1] = [await cpu(name), await uptime()];
        if (attach !== undefined) {
          attach.kill("SIGINT");
          await attach.status;
        }
        if (l0 !== undefined) {
          const l1 = await logTotals();
          const blocks = l1.blocks! - l0.blocks!;
          if (k0 !== undefined) {
            const k1 = await csSample();
            const b = Math.max(1, blocks);
            const f = (x: number) => (x / b).toFixed(3);
            let sum = 0;
            k1.forEach((k, i) => {
              const d = (key: string) => (k.m[key] ?? 0) - (k0[i]!.m[key] ?? 0);
              sum += k.cpu - k0[i]!.cpu;
              cpuLines.push(
                `  chunkserver ${i} per block: CPU ms ${
                  f(k.cpu - k0[i]!.cpu)
                }, switches ${f(k.sw - k0[i]!.sw)}, appends ${
                  f(d("data_port_calls") - d("data_port_applies"))
                }, applies ${f(d("data_port_applies"))}, bulk ${
                  f(d("bulk_port_calls"))
                }, journal syncs ${f(d("journal_syncs"))} (inline ${
                  f(d("journal_inline_syncs"))
                }), writes ${f(d("writes"))}, reads ${
                  f(d("reads"))
                }; threads' CPU ms ${
                  Object.entries(k.th).map(([t, v]) =>
                    `${t} ${f(v - (k0[i]!.th[t] ?? 0))}`
                  ).join(", ")
                }`,
              );
            });
            cpuLines.push(`  chunkservers CPU ms per block: ${f(sum)}`);
          }
          cpuLines.push(
            `  tables log: ${blocks} blocks, ${
              (blocks ? (l1.records! - l0.records!) / blocks : 0).toFixed(1)
            } records per block`,
          );
          if (l1.gathers !== undefined) {
            // Where a write waited before its block (per block, ms).
            const d = (k: string) => (l1[k] ?? 0) - (l0[k] ?? 0);
            const per = (k: string) => (d(k) / Math.max(1, blocks)).toFixed(2);
            cpuLines.push(
              `  tables group commit per block: turn ${
                per("turnMs")
              } ms, gather ${per("gatherMs")} ms, in flight ${
                per("blockMs")
              } ms; ${d("gathers")} gathers (${
                d("gathersFilled")
              } filled, the rest timed out), ${d("idleSpells")} idle spells`,
            );
          }
        }
        cpuLines.push(`  ${name} window (uptime s): ${u0} ${u1}`);
        ops[name] = res.opsPerSec;
        cpuLines.push(
          `  ${name} latency ms: p50 ${(res.p50Ns / 1e6).toFixed(2)}, p99 ${
            (res.p99Ns / 1e6).toFixed(2)
          }`,
        );
        if (res.errors > 0) console.log(`  ${name}: ${res.errors} errors`);
        // CPU ms per put: each component, then the load generator.
        const per = c1.map((v, i) => (v - c0[i]!) / Math.max(1, res.total));
        const parts = [...Object.keys(pids[name]!), "load generator"];
        const service = per.slice(0, -1).reduce((a, b) => a + b, 0);
        cpuLines.push(
          `  ${name} CPU ms/put: service ${service.toFixed(3)} (${
            parts.map((p, i) => `${p} ${per[i]!.toFixed(3)}`).join(", ")
          })`,
        );
      }
      console.log(
        `put ×${c}: tables ${ops.tables!.toFixed(0)}/s, etcd ${
          ops.etcd!.toFixed(0)
        }/s, ratio ${(ops.tables! / ops.etcd!).toFixed(2)} (load ${
          Deno.loadavg()[0]!.toFixed(1)
        })`,
      );
      for (const l of cpuLines) console.log(l);
    }
  }
} finally {
  http1.close();
  await etcd.stop();
  await stack.stop();
  await Deno.remove(dataRoot, { recursive: true }).catch(() => {});
}
