/**
 * Probe: what the whole tables stack burns doing nothing. Starts the
 * stack as `benches/_tables_put_probe.ts` does (kv ×3, GFS masters ×3 +
 * chunkservers ×3, tables masters ×2, tablet servers ×3; session TTL 4 s,
 * reconcile 500 ms), creates a table of 6 tablets, writes a few rows, then
 * reads each process's CPU time from /proc over `windows` idle windows of
 * `seconds` each and prints CPU ms per second by component and process,
 * with the load average, then each master's reconcile pass counts. Writes
 * no results file. `PROBE_SCRUB_PAUSE_MS=0` starts the chunkservers
 * without their scrubber (to see what it costs).
 * `deno run -A benches/_tables_idle_probe.ts [windows] [seconds]`
 */
import { startTablesStack } from "@strata/tables/stack_launcher";
import { TablesClient } from "@strata/tables/client";
import { cpuMs } from "./proc_cpu.ts";

const WINDOWS = Number(Deno.args[0] ?? 2);
const SECONDS = Number(Deno.args[1] ?? 10);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const loadavg = async () =>
  (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");

const scrubPause = Deno.env.get("PROBE_SCRUB_PAUSE_MS");
const dataRoot = await Deno.makeTempDir({ prefix: "strata-idle-probe-" });
const stack = await startTablesStack({
  dataRoot,
  masters: 2,
  servers: 3,
  sessionTtlMs: 4000,
  reconcileMs: 500,
  gfs: {
    masters: 3,
    chunkservers: 3,
    ...(scrubPause === undefined
      ? {}
      : { chunkserver: () => ({ scrubPauseMs: Number(scrubPause) }) }),
  },
  inheritStderr: Deno.env.get("PROBE_STDERR") === "1",
});
try {
  const admin = new TablesClient(stack.masterUrls(), {
    token: stack.secrets.tokens.admin,
    timeoutMs: 60_000,
  });
  await admin.createTable("idle", [{ name: "f" }], ["b", "d", "f", "h", "j"]);
  for (let i = 0; i < 600; i++) {
    const ts = await admin.tablets("idle").catch(() => []);
    if (ts.length === 6 && ts.every((x) => x.url !== null)) break;
    await sleep(200);
  }
  for (let i = 0; i < 12; i++) {
    await admin.put("idle", String.fromCharCode(97 + i), "f", "v", "x");
  }
  // Let the moves of the count balancing and the first sweeps settle.
  await sleep(5000);
  const groups: Record<string, number[]> = {
    "tablet servers": [...stack.servers.values()].map((p) => p.process.pid),
    "tables masters": [...stack.masters.values()].map((p) => p.process.pid),
    kv: [...(stack.kv?.nodes.values() ?? [])].map((n) => n.process.pid),
    chunkservers: stack.gfs!.chunkservers.map((c) => c.process.pid),
    "GFS masters": stack.gfs!.masters.map((m) => m.process.pid),
  };
  const all = Object.values(groups).flat();
  for (let w = 0; w < WINDOWS; w++) {
    const before = await Promise.all(all.map((p) => cpuMs([p])));
    const t0 = performance.now();
    await sleep(SECONDS * 1000);
    const after = await Promise.all(all.map((p) => cpuMs([p])));
    const s = (performance.now() - t0) / 1000;
    const per = new Map(all.map((p, i) => [p, (after[i]! - before[i]!) / s]));
    const total = [...per.values()].reduce((a, b) => a + b, 0);
    const parts = Object.entries(groups).map(([name, pids]) =>
      `${name} ${
        pids.map((p) => per.get(p)!).reduce((a, b) => a + b, 0).toFixed(0)
      } [${pids.map((p) => per.get(p)!.toFixed(0)).join(" ")}]`
    );
    console.log(
      `idle window ${w + 1}: total ${total.toFixed(0)} CPU ms/s; ${
        parts.join("; ")
      }; loadavg ${await loadavg()}`,
    );
  }
  for (const [id, m] of stack.masters) {
    const r = await fetch(`${m.url}/v1/status`, {
      headers: { authorization: `Bearer ${stack.secrets.tokens.read}` },
    });
    const s = await r.json() as { role: string; passes?: unknown };
    console.log(
      `master ${id} (${s.role}): passes ${JSON.stringify(s.passes ?? null)}`,
    );
  }
} finally {
  await stack.stop();
  await Deno.remove(dataRoot, { recursive: true }).catch(() => {});
}
