/**
 * Probe: what the tables stack burns doing nothing, in detail (see also
 * `_tables_idle_probe.ts`). Starts the put probe's
 * stack (kv x3, GFS masters x3 + chunkservers x3, tables masters x2,
 * tablet servers x3; session TTL 4 s, reconcile 500 ms), a table of 6
 * tablets, 2 s of puts at 16 clients, then samples each component's CPU
 * (ms/s, /proc/<pid>/stat) and main-thread wake-ups (voluntary context
 * switches) over `IDLE_WINDOWS` windows of `IDLE_SECONDS` (default 1 x
 * 15 s). `IDLE_THREADS=1` adds CPU per thread, `IDLE_METRICS=1` the kv
 * nodes' and GFS masters' Prometheus counters per second (raft messages
 * by type, proposals, HTTP requests by route), `IDLE_HOLD=1` keeps the
 * stack up afterwards (for strace/perf), `PROBE_STDERR=1` shows its
 * stderr. Each window prints its span in /proc/uptime seconds, the clock
 * of V8's CPU profiles (`STRATA_CPU_PROF_DIR`).
 * `deno run -A benches/_tables_idle_detail_probe.ts`
 */
import { startTablesStack } from "@strata/tables/stack_launcher";
import { TablesClient } from "@strata/tables/client";
import { runLoad } from "./http_load.ts";
import { Http1Client } from "@strata/edge";

const SECONDS = Number(Deno.env.get("IDLE_SECONDS") ?? 15);
const WINDOWS = Number(Deno.env.get("IDLE_WINDOWS") ?? 1);
const THREADS = Deno.env.get("IDLE_THREADS") === "1";
const HOLD = Deno.env.get("IDLE_HOLD") === "1";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const hz = 100;
async function ticks(pid: number, tid?: number) {
  const p = tid ? `/proc/${pid}/task/${tid}/stat` : `/proc/${pid}/stat`;
  const s = await Deno.readTextFile(p);
  const rest = s.slice(s.lastIndexOf(")") + 2).split(" ");
  return Number(rest[11]) + Number(rest[12]);
}
async function csw(pid: number) {
  const out: Record<string, number> = {};
  for await (const e of Deno.readDir(`/proc/${pid}/task`)) {
    try {
      const comm = (await Deno.readTextFile(`/proc/${pid}/task/${e.name}/comm`))
        .trim();
      const st = await Deno.readTextFile(`/proc/${pid}/task/${e.name}/status`);
      const v = Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(st)![1]);
      out[`${comm}#${e.name}`] = v;
    } catch { /* gone */ }
  }
  return out;
}
async function threads(pid: number) {
  const out: Record<string, number> = {};
  for await (const e of Deno.readDir(`/proc/${pid}/task`)) {
    const tid = Number(e.name);
    try {
      const comm = (await Deno.readTextFile(`/proc/${pid}/task/${tid}/comm`))
        .trim();
      out[`${comm}#${tid}`] = await ticks(pid, tid);
    } catch { /* gone */ }
  }
  return out;
}
const KEYS = 10_000;
const key8 = (n: number) => `r${String(n % KEYS).padStart(7, "0")}`;
const dataRoot = await Deno.makeTempDir({ prefix: "strata-idle-probe-" });
const stack = await startTablesStack({
  dataRoot,
  masters: 2,
  servers: 3,
  sessionTtlMs: 4000,
  reconcileMs: Number(Deno.env.get("IDLE_RECONCILE_MS") ?? 500),
  gfs: { masters: 3, chunkservers: 3 },
  inheritStderr: Deno.env.get("PROBE_STDERR") === "1",
});
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
  await admin.createTable("bench", [{ name: "f" }], splits);
  for (let i = 0; i < 300; i++) {
    const ts = await admin.tablets("bench").catch(() => []);
    if (ts.length === 6 && ts.every((x) => x.url !== null)) break;
    await sleep(200);
  }
  const value = new Uint8Array(100).fill(0x61);
  await runLoad(
    16,
    2000,
    (w, s) =>
      client.put("bench", key8(w * 7919 + s), "f", "v", value).then(() => true),
  );
  await sleep(3000);
  const pids: Record<string, number[]> = {
    servers: [...stack.servers.values()].map((p) => p.process.pid),
    masters: [...stack.masters.values()].map((p) => p.process.pid),
    kv: [...(stack.kv?.nodes.values() ?? [])].map((n) => n.process.pid),
    chunkservers: stack.gfs!.chunkservers.map((c) => c.process.pid),
    gfsMasters: stack.gfs!.masters.map((m) => m.process.pid),
  };
  console.log(JSON.stringify({ pids }));
  const scrapeTargets: Array<[string, string, string]> = [
    ...[...(stack.kv?.nodes.values() ?? [])].map((n) =>
      [`kv${n.id}`, n.url, stack.kv!.secrets!.tokens.read] as [
        string,
        string,
        string,
      ]
    ),
    ...stack.gfs!.masterUrls.map((u, i) =>
      [`gm${i + 1}`, u, stack.gfs!.secrets!.tokens.read] as [
        string,
        string,
        string,
      ]
    ),
    ...stack.gfs!.chunkservers.map((c, i) =>
      [
        `cs${i + 1}`,
        (c as unknown as { url: string }).url,
        stack.gfs!.secrets!.tokens.read,
      ] as [string, string, string]
    ),
  ];
  const scrape = async () => {
    const out = new Map<string, number>();
    for (const [name, url, tok] of scrapeTargets) {
      if (!url) continue;
      try {
        const r = await fetch(`${url}/metrics`, {
          headers: { authorization: `Bearer ${tok}` },
        });
        const text = await r.text();
        for (const line of text.split("\n")) {
          if (line.startsWith("#") || !line.trim()) continue;
          if (/_bucket\{/.test(line)) continue;
          const i = line.lastIndexOf(" ");
          out.set(`${name} ${line.slice(0, i)}`, Number(line.slice(i + 1)));
        }
      } catch (e) {
        console.log(`scrape ${name}: ${e}`);
      }
    }
    return out;
  };
  for (let w = 0; w < WINDOWS; w++) {
    const m0 = Deno.env.get("IDLE_METRICS") === "1"
      ? await scrape()
      : undefined;
    const all = Object.values(pids).flat();
    const t0 = new Map(
      await Promise.all(all.map(async (p) => [p, await ticks(p)] as const)),
    );
    const cs0 = new Map(
      await Promise.all(
        Object.values(pids).flat().map(async (p) => [p, await csw(p)] as const),
      ),
    );
    const th0 = THREADS
      ? new Map(
        await Promise.all(all.map(async (p) => [p, await threads(p)] as const)),
      )
      : undefined;
    const u0 = (await Deno.readTextFile("/proc/uptime")).split(" ")[0];
    const s0 = performance.now();
    await sleep(SECONDS * 1000);
    const el = (performance.now() - s0) / 1000;
    console.log(
      `uptime window ${u0} ${
        (await Deno.readTextFile("/proc/uptime")).split(" ")[0]
      }`,
    );
    const t1 = new Map(
      await Promise.all(all.map(async (p) => [p, await ticks(p)] as const)),
    );
    const per: Record<string, string> = {};
    let total = 0;
    for (const [k, ps] of Object.entries(pids)) {
      const v = ps.map((p) => ((t1.get(p)! - t0.get(p)!) * 1000 / hz) / el);
      total += v.reduce((a, b) => a + b, 0);
      per[k] = `${v.reduce((a, b) => a + b, 0).toFixed(1)} [${
        v.map((x) => x.toFixed(1)).join(" ")
      }]`;
    }
    console.log(
      `window ${w}: total ${total.toFixed(1)} ms/s load ${
        Deno.loadavg()[0]!.toFixed(2)
      } ${JSON.stringify(per)}`,
    );
    for (const [k, ps] of Object.entries(pids)) {
      const parts: string[] = [];
      for (const p of ps) {
        const a = cs0.get(p)!, b = await csw(p);
        const main = Object.entries(b).filter(([n]) => n.startsWith("deno#"))
          .reduce((x, [n, v]) => x + v - (a[n] ?? 0), 0);
        const all = Object.entries(b).reduce(
          (x, [n, v]) => x + v - (a[n] ?? 0),
          0,
        );
        parts.push(`${(main / el).toFixed(0)}/${(all / el).toFixed(0)}`);
      }
      console.log(`  wakeups/s main/all ${k}: ${parts.join(" ")}`);
    }
    if (m0) {
      const m1 = await scrape();
      for (const [k, v] of m1) {
        const d = v - (m0.get(k) ?? 0);
        if (
          d > 0 && !/process_|_sum$|nodejs|heap|seconds_total|_max|_min/.test(k)
        ) console.log(`  metric ${k}: ${(d / el).toFixed(2)}/s`);
      }
    }
    if (th0) {
      for (const [k, ps] of Object.entries(pids)) {
        for (const p of ps) {
          const a = th0.get(p)!, b = await threads(p);
          const parts = Object.entries(b).map(([n, v]) =>
            [n, (v - (a[n] ?? 0)) * 10 / el] as const
          )
            .filter(([, v]) => v > 0).sort((x, y) => y[1] - x[1]).map((
              [n, v],
            ) => `${n.replace(/#\d+$/, "")} ${v.toFixed(1)}`);
          console.log(`  ${k} ${p}: ${parts.join(", ")}`);
        }
      }
    }
  }
  if (HOLD) {
    console.log("holding");
    await sleep(1e9);
  }
} finally {
  http1.close();
  await stack.stop();
  await Deno.remove(dataRoot, { recursive: true }).catch(() => {});
}
