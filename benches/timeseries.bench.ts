/**
 * bench:timeseries — writes of time-series points "at now" through the
 * tables service over HTTP, with the time bucket hashed (the default) and
 * without, in the same run: the stack of `deno task tables` (kv ×3, a
 * tables master, tablet servers ×3, each a process; tablets in a local
 * directory unless `--gfs`), two time-series tables of one-week buckets,
 * each pre-split into 3 tablets over the 3 servers — the hashed one at
 * equal hash ranges (`hashSplits`), the plain one at the start of last
 * week's and this week's buckets (a range split by time: what a table
 * keyed by (bucket, series, t) would get). The master splits by load
 * (`--split-ops`, default 300 writes/s held 3 s) and moves tablets to even
 * the load, as it would in production.
 *
 * Each line is a closed-loop run of `CLIENTS` writers bursting into ONE
 * series (`--series N`: N series), one point per request at t = now (strictly rising); the lines
 * alternate (plain, hashed, plain, hashed) so a change in the machine's
 * load colours both. Measured: points/s per mode, and how the writes
 * spread over the table's tablets: every second the tablet servers'
 * per-tablet write counters are read, and for each second the busiest
 * tablet's writes are divided by the mean over the table's tablets then
 * open; the figure is that ratio averaged over the seconds, weighted by
 * their writes. Goal: with hashing, the busiest tablet at most 1.5x the
 * mean.
 */
import { startTablesStack } from "../apps/tables/stack_launcher.ts";
import { TablesClient } from "../apps/tables/client/tables_client.ts";
import { TimeSeriesClient } from "../apps/tables/client/time_series_client.ts";
import {
  pointKey,
  timeSeriesSpecSchema,
  WEEK_MS,
} from "../apps/tables/shared/time_series.ts";
import { QUICK, Suite } from "./harness.ts";
import { loadBenchResult, runLoad } from "./http_load.ts";

const USE_GFS = Deno.args.includes("--gfs");
const flag = (name: string, fallback: number) => {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Number(Deno.args[i + 1]) : fallback;
};
const SPLIT_OPS = flag("--split-ops", 300);
const CLIENTS = flag("--clients", 64);
/** Series the writers share (default 1: a burst on one series). */
const SERIES = flag("--series", 1);
const DURATION_MS = QUICK ? 1000 : 6000;
const ROUNDS = QUICK ? 1 : 2;
const TABLETS = 3;
const loadavg = () => Deno.loadavg().map((x) => x.toFixed(2)).join(" ");
const MODES = [
  { name: "plain", table: "ts_plain", hashing: false },
  { name: "hashed", table: "ts_hashed", hashing: true },
] as const;

const suite = new Suite(
  "timeseries",
  `time-series points at now, ${CLIENTS} writers on ${SERIES} series, through tables (kv ×3, master ×1, tablet servers ×3, ${
    USE_GFS ? "GFS masters ×3 + chunkservers ×3" : "tablets in a local dir"
  }; 3 tablets per table, split by load at ${SPLIT_OPS} ops/s) with the time bucket hashed vs not`,
);
suite.metric("tablet storage", USE_GFS ? "GFS" : "local directory");
suite.metric("writers", CLIENTS);
suite.metric("series", SERIES);
suite.metric("split by load at, writes+reads/s held 3 s", SPLIT_OPS);
suite.metric("load average at start", loadavg());

const dataRoot = await Deno.makeTempDir({ prefix: "bench_timeseries_" });
const stack = await startTablesStack({
  dataRoot,
  masters: 1,
  servers: 3,
  sessionTtlMs: 4000,
  reconcileMs: 500,
  masterFlags: ["--split-ops", String(SPLIT_OPS), "--split-after-ms", "3000"],
  serverFlags: ["--load-window-ms", "3000"],
  ...(USE_GFS ? { gfs: { masters: 3, chunkservers: 3 } } : {}),
});
const client = new TablesClient(stack.masterUrls(), {
  token: stack.secrets.tokens.admin,
});
const ts = new TimeSeriesClient(client);

/**
 * Reads the per-tablet write counters of `table` on every tablet server
 * each second until stopped. @returns the writes-weighted mean over the
 * seconds of (busiest tablet's writes ÷ mean writes of the table's open
 * tablets), and the writes counted.
 */
function sampleSpread(table: string) {
  let running = true;
  const read = async () => {
    const counts = new Map<string, number>();
    await Promise.all([...stack.servers.values()].map(async (s) => {
      const r = await fetch(`${s.url}/v1/tablets`, {
        headers: { authorization: `Bearer ${stack.secrets.tokens.read}` },
      });
      const body = await r.json() as {
        tablets: { id: string; table: string; load: { writes: number } }[];
      };
      for (const t of body.tablets) {
        if (t.table === table) counts.set(t.id, t.load.writes);
      }
    }));
    return counts;
  };
  const done = (async () => {
    let prev = await read();
    let weighted = 0;
    let writes = 0;
    while (running) {
      await new Promise((r) => setTimeout(r, 1000));
      const now = await read();
      const deltas = [...now].map(([id, n]) => n - (prev.get(id) ?? 0));
      const total = deltas.reduce((a, d) => a + d, 0);
      if (total > 0) {
        weighted += (Math.max(...deltas) / (total / now.size)) * total;
        writes += total;
      }
      prev = now;
    }
    return { ratio: weighted / Math.max(1, writes), writes };
  })();
  return { stop: () => (running = false), done };
}

try {
  const week = Math.floor(Date.now() / WEEK_MS);
  for (const m of MODES) {
    if (m.hashing) await ts.create(m.table, { tablets: TABLETS });
    else {
      // Pre-split by time: earlier weeks, last week, this week on.
      const spec = timeSeriesSpecSchema.parse({ hashing: false });
      await client.createTable(
        m.table,
        [{ name: "v" }],
        [
          pointKey(spec, "", (week - 1) * WEEK_MS).subarray(0, 8),
          pointKey(spec, "", week * WEEK_MS).subarray(0, 8),
        ],
        { timeSeries: spec },
      );
    }
  }
  // Wait until the 6 tablets are served and spread (2 per server).
  const end = performance.now() + 60_000;
  for (;;) {
    const all = await client.tablets();
    const per = new Map<string, number>();
    for (const t of all) {
      per.set(t.server ?? "-", (per.get(t.server ?? "-") ?? 0) + 1);
    }
    if (all.every((t) => t.url) && [...per.values()].every((n) => n === 2)) {
      break;
    }
    if (performance.now() > end) throw new Error("tablets not spread in 60 s");
    await new Promise((r) => setTimeout(r, 500));
  }

  const spreads = new Map<string, { ratio: number; writes: number }[]>(
    MODES.map((m) => [m.name, []]),
  );
  const value = new Uint8Array(100).fill(0x61);
  // Warm-up, not measured: the first line run was the slowest otherwise.
  for (const m of MODES) {
    let t = Date.now();
    await runLoad(CLIENTS, QUICK ? 200 : 2000, async (worker) => {
      await ts.write(m.table, `warm-${worker}`, [{ t: t++, value }]);
      return true;
    });
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const m of MODES) {
      const last = new Array<number>(SERIES).fill(0);
      const sampling = sampleSpread(m.table);
      const r = await runLoad(CLIENTS, DURATION_MS, async (worker) => {
        const s = worker % SERIES;
        const t = Math.max(Date.now(), last[s]! + 1);
        last[s] = t;
        await ts.write(m.table, `burst-${round}-${s}`, [{ t, value }]);
        return true;
      }).finally(() => sampling.stop());
      const spread = await sampling.done;
      spreads.get(m.name)!.push(spread);
      suite.record(
        loadBenchResult(
          "timeseries",
          `${m.name} ×${CLIENTS} (round ${round + 1})`,
          r,
        ),
      );
      if (r.errors > 0) {
        suite.metric(`${m.name} round ${round + 1}: failed writes`, r.errors);
      }
    }
  }

  const rate = (name: string) =>
    suite.results.filter((x) => x.name.startsWith(`${name} `))
      .reduce((a, x) => a + x.opsPerSec, 0) / ROUNDS;
  for (const m of MODES) {
    suite.metric(`${m.name}: points/s (mean of rounds)`, rate(m.name));
  }
  suite.compare(
    "points/s, hashed ÷ plain",
    "points/s",
    rate("hashed"),
    rate("plain"),
  );

  for (const m of MODES) {
    const rounds = spreads.get(m.name)!;
    const writes = rounds.reduce((a, x) => a + x.writes, 0);
    const ratio = rounds.reduce((a, x) => a + x.ratio * x.writes, 0) / writes;
    suite.metric(
      `${m.name}: tablets at the end`,
      (await client.tablets(m.table)).length,
    );
    suite.metric(`${m.name}: writes counted by the servers`, writes);
    suite.compare(
      `busiest tablet ÷ mean tablet, ${m.name}`,
      "writes per second",
      ratio,
      1,
      m.hashing ? { op: "<=", value: 1.5 } : undefined,
    );
  }
  const status = await fetch(`${stack.masterUrls()[0]}/v1/status`, {
    headers: { authorization: `Bearer ${stack.secrets.tokens.admin}` },
  }).then((r) => r.json());
  const decisions = status.decisions as { kind: string; text: string }[];
  suite.metric(
    "master: splits by load",
    decisions.filter((d) => d.text.includes("splitting by load")).length,
  );
  suite.metric(
    "master: moves to even the load",
    decisions.filter((d) => d.kind === "move").length,
  );
  suite.metric("load average at end", loadavg());
} finally {
  await stack.stop();
  await Deno.remove(dataRoot, { recursive: true }).catch(() => {});
}
await suite.finish();
