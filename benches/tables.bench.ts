/**
 * bench:tables — the tables service end to end over HTTP, as
 * `deno task tables` runs it (apps/tables/stack_launcher.ts: kv ×3, a GFS
 * cell of masters ×3 and chunkservers ×3, tables masters ×2, tablet servers
 * ×3, each a process), side by side with a 3-member etcd 3.4 cluster
 * (Debian's etcd-server) on loopback, driven by the same closed-loop load
 * generator: puts of 100-byte values and reads of single keys/rows at 1, 16
 * and 256 concurrent clients. The measurements are interleaved (tables,
 * etcd, tables, etcd …) so a load change on a shared machine colours both.
 *
 * Durability on both sides before a put is acknowledged: tables appends the
 * row mutation to the tablet's commit log in GFS (record append, group
 * commit per tablet, acknowledged once on every one of the chunk's 3
 * replicas, each fsynced); etcd commits through Raft on a majority of its
 * members, each fsyncing its WAL (etcd's default). Reads: tables reads the
 * row at the one tablet server serving it; etcd's range is linearizable
 * (its default). Tables is called through `TablesClient` (location cache,
 * rows straight to their tablet server), etcd through its v3 JSON gateway.
 * Puts on both sides go through one `Http1Client` (kept-alive HTTP/1.1,
 * never re-sent; about a quarter of fetch's CPU per call), gets through
 * fetch on both sides: the load generator's HTTP stack is the same for
 * both, so the ratio reflects the services.
 *
 * The table is pre-split into 6 tablets over the 3 servers. Goal: tables'
 * put throughput at 256 clients at least 2x etcd's (writes do not all pass
 * through one consensus log). Also measured, with no peer: splits per
 * minute under a write load (each split until both halves are served), and
 * the time from `kill -9` of a tablet server under a write load until
 * every one of its tablets answers reads of its rows again.
 *
 * The engine line (one tablet against RocksDB's db_bench) is its own
 * suite, bench:tablet (benches/results/tablet.json).
 *
 * `--no-gfs` keeps tablets in a shared local directory instead of GFS.
 */
import { Buffer } from "node:buffer";
import {
  startTablesStack,
  type TablesStack,
} from "@strata/tables/stack_launcher";
import {
  TablesClient,
  TablesClientError,
  type TabletInfo,
} from "@strata/tables/client";
import {
  type EtcdCluster,
  findEtcd,
  startEtcdCluster,
} from "../scripts/etcd_cluster.ts";
import { Http1Client } from "@strata/edge";
import { QUICK, Suite } from "./harness.ts";
import { cpuMs } from "./proc_cpu.ts";
import { loadBenchResult, type LoadResult, runLoad } from "./http_load.ts";

const USE_GFS = !Deno.args.includes("--no-gfs");
const DURATION_MS = QUICK ? 500 : 5000;
const CONCURRENCY = QUICK ? [1, 16] : [1, 16, 256];
const KEYS = QUICK ? 600 : 10_000;
const TABLETS = 6;
/** How long each service's idle CPU is measured. */
const IDLE_MS = QUICK ? 500 : 3000;
/** Session TTL of tables masters and servers: bounds the recovery time. */
const TTL_MS = 4000;
/** Writers running during the split and kill measurements. */
const BACKGROUND_WRITERS = 16;
const SPLIT_WINDOW_MS = QUICK ? 0 : 60_000;
const MAX_SPLITS = QUICK ? 1 : 12;
const TABLE = "bench";
/** The tables side's name in the results (the report marks names with "strata" as ours). */
const NAME = "strata tables";
const FAMILY = "f";
const QUALIFIER = "v";
const value = new Uint8Array(100).fill(0x61);
const key8 = (n: number) => `r${String(n % KEYS).padStart(7, "0")}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const loadavg = () => Deno.loadavg().map((x) => x.toFixed(2)).join(" ");

const suite = new Suite(
  "tables",
  `tables (kv ×3, ${
    USE_GFS ? "GFS masters ×3 + chunkservers ×3" : "tablets in a local dir"
  }, masters ×2, tablet servers ×3; ${TABLETS} tablets) vs etcd 3-member cluster over HTTP, 100 B values, durable before acknowledging on both`,
);
suite.metric("tablet storage", USE_GFS ? "GFS" : "local directory (--no-gfs)");
suite.metric("tablets at start", TABLETS);
suite.metric("keys", KEYS);
suite.metric("value bytes", value.length);
suite.metric("session TTL ms", TTL_MS);
suite.metric("load average at start", loadavg());
suite.metric(
  "engine line",
  "bench:tablet (benches/results/tablet.json): one tablet vs RocksDB db_bench",
);

function record(group: string, name: string, r: LoadResult) {
  suite.record(loadBenchResult(group, name, r));
  if (r.errors > 0) {
    console.log(`    (${r.errors} failed requests)`);
    suite.metric(`${group} · ${name}: failed requests`, r.errors);
  }
}

async function prefill(put: (k: string) => Promise<boolean>) {
  // Reads need keys to exist; fill them with 64 writers. A put whose
  // outcome is unknown is put again (the same value for the same key: the
  // prefill only needs the key there): a tablet moved by spread() can
  // answer a write in flight at its old server so (an unmeasured setup
  // step; the measured lines count such failures instead).
  let next = 0;
  const putOnce = async (k: string) => {
    for (let attempt = 1;; attempt++) {
      try {
        if (await put(k)) return;
      } catch (e) {
        if (attempt >= 5) throw e;
        continue;
      }
      throw new Error(`prefill of ${k} failed`);
    }
  };
  await Promise.all(Array.from({ length: 64 }, async () => {
    while (next < KEYS) await putOnce(key8(next++));
  }));
}

/** One side of the comparison: a put and a get of `key`. */
interface Target {
  name: string;
  put(key: string): Promise<boolean>;
  get(key: string): Promise<boolean>;
  /** The service's processes by component, for their CPU time. */
  pids(): Record<string, number[]>;
  /** Log blocks and records acknowledged so far, summed over the servers (tables only). */
  logStats?(): Promise<{ blocks: number; records: number } | undefined>;
}

// --- tables ---

/** Waits until every tablet of the table is served, and returns them. */
async function servedTablets(
  client: TablesClient,
  timeoutMs = 60_000,
): Promise<TabletInfo[]> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const ts = await client.tablets(TABLE).catch(() => []);
    if (ts.length > 0 && ts.every((t) => t.url !== null)) return ts;
    await sleep(100);
  }
  throw new Error(`the tablets of ${TABLE} were not all served in time`);
}

/** Places the tablets round-robin over the servers, by moves, and waits. */
async function spread(client: TablesClient, servers: string[]) {
  let ts = await servedTablets(client);
  for (const [i, t] of ts.entries()) {
    const want = servers[i % servers.length]!;
    if (t.server !== want) await client.moveTablet(t.id, want);
  }
  for (let i = 0; i < 600; i++) {
    ts = await servedTablets(client);
    if (ts.every((t, j) => t.server === servers[j % servers.length])) return;
    await sleep(100);
  }
  throw new Error("the tablets did not settle on their servers");
}

function tablesTarget(client: TablesClient, stack: TablesStack): Target {
  return {
    name: NAME,
    pids: () => ({
      "tablet servers": [...stack.servers.values()].map((p) => p.process.pid),
      "tables masters": [...stack.masters.values()].map((p) => p.process.pid),
      kv: [...(stack.kv?.nodes.values() ?? [])].map((n) => n.process.pid),
      ...(stack.gfs
        ? {
          "GFS chunkservers": stack.gfs.chunkservers.map((c) => c.process.pid),
          "GFS masters": stack.gfs.masters.map((m) => m.process.pid),
        }
        : {}),
    }),
    async logStats() {
      // Each server's /v1/status (read token): its log's counters.
      const all = await Promise.all(
        [...stack.servers.values()].map(async (p) => {
          const res = await fetch(`${p.url}/v1/status`, {
            headers: { authorization: `Bearer ${stack.secrets.tokens.read}` },
          });
          const body = await res.json() as {
            log?: { blocks: number; records: number };
          };
          return body.log;
        }),
      );
      // Tablets on local disk (--no-gfs) have no server log.
      if (all.some((l) => l === undefined)) return undefined;
      return {
        blocks: all.reduce((n, l) => n + l!.blocks, 0),
        records: all.reduce((n, l) => n + l!.records, 0),
      };
    },
    async put(key) {
      await client.put(TABLE, key, FAMILY, QUALIFIER, value);
      return true;
    },
    async get(key) {
      const row = await client.getRow(TABLE, key);
      return row.cells.length === 1;
    },
  };
}

// --- etcd ---

const b64 = (s: string | Uint8Array) =>
  Buffer.from(typeof s === "string" ? new TextEncoder().encode(s) : s)
    .toString("base64");

function etcdTarget(etcd: EtcdCluster, http1: Http1Client): Target {
  const urls = etcd.clientUrls;
  const valueB64 = b64(value);
  let n = 0;
  return {
    name: "etcd",
    pids: () => ({ etcd: etcd.pids }),
    async put(key) {
      const res = await http1.request(`${urls[n++ % urls.length]}/v3/kv/put`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ key: b64(key), value: valueB64 }),
        timeoutMs: 60_000,
      });
      return res.status >= 200 && res.status < 300;
    },
    async get(key) {
      // Linearizable by default (serializable: false).
      const res = await fetch(`${urls[n++ % urls.length]}/v3/kv/range`, {
        method: "POST",
        body: JSON.stringify({ key: b64(key) }),
      });
      if (!res.ok) {
        await res.body?.cancel();
        return false;
      }
      const body = await res.json() as { kvs?: unknown[] };
      return body.kvs?.length === 1;
    },
  };
}

// --- the loads ---

/**
 * Each line on each side in turn, with the CPU time the service's
 * processes and the load generator (this process) spent per request: on a
 * shared machine, a steadier figure than wall-clock throughput.
 */
async function measureLoads(targets: Target[]) {
  // What the services burn doing nothing (heartbeats, leases, reconcile
  // passes): at low request rates it dominates the CPU per request.
  for (const t of targets) {
    const pids = Object.values(t.pids()).flat();
    const [c0, t0] = [await cpuMs(pids), performance.now()];
    await sleep(IDLE_MS);
    const [c1, t1] = [await cpuMs(pids), performance.now()];
    suite.metric(
      `${t.name}: idle service CPU ms per s`,
      (c1 - c0) / ((t1 - t0) / 1000),
    );
  }
  for (const c of CONCURRENCY) {
    for (const op of ["put", "get"] as const) {
      for (const t of targets) {
        const g = `${op} ×${c} clients`;
        const parts = Object.entries(t.pids());
        const cpu = () => Promise.all(parts.map(([, pids]) => cpuMs(pids)));
        const log0 = op === "put" ? await t.logStats?.() : undefined;
        const [service0, self0] = [await cpu(), await cpuMs([Deno.pid])];
        const r = await runLoad(
          c,
          DURATION_MS,
          (w, s) => t[op](key8(w * 7919 + s)),
        );
        const [service1, self1] = [await cpu(), await cpuMs([Deno.pid])];
        record(g, t.name, r);
        if (log0 !== undefined) {
          // The group commit's size in this line: per-block costs (the
          // append and fsync on 3 replicas, the checks) shrink with it.
          const log1 = await t.logStats?.() ?? log0;
          const blocks = log1.blocks - log0.blocks;
          suite.metric(
            `${g} · ${t.name}: log blocks per s`,
            blocks / (DURATION_MS / 1000),
          );
          suite.metric(
            `${g} · ${t.name}: puts per log block`,
            blocks > 0 ? r.total / blocks : 0,
          );
        }
        let total = 0;
        for (const [i, [part]] of parts.entries()) {
          const ms = service1[i]! - service0[i]!;
          total += ms;
          if (parts.length > 1) {
            suite.metric(
              `${g} · ${t.name}: ${part} CPU ms per request`,
              ms / r.total,
            );
          }
        }
        suite.metric(
          `${g} · ${t.name}: service CPU ms per request`,
          total / r.total,
        );
        suite.metric(
          `${g} · ${t.name}: load generator CPU ms per request`,
          (self1 - self0) / r.total,
        );
      }
    }
  }
}

/** A prefilled row of tablet `t`: its start key, or the first key. */
function firstRow(t: TabletInfo): string {
  return t.start.length ? new TextDecoder().decode(t.start) : key8(0);
}

/**
 * Reads `row` (one try each, 50 ms apart, so the timing is not a retry
 * backoff's) until it comes back with its cell. @returns ms since `from`.
 */
async function untilRowAnswers(
  prober: TablesClient,
  row: string,
  from: number,
): Promise<number> {
  while (performance.now() < from + 120_000) {
    try {
      const r = await prober.getRow(TABLE, row);
      if (r.cells.length === 1) return performance.now() - from;
    } catch { /* not served yet */ }
    prober.invalidate(TABLE);
    await sleep(50);
  }
  throw new Error(`row ${row} was not served within 120 s`);
}

/** Runs `writers` putting rows until `stop()`; counts what they did. */
function backgroundWriters(client: TablesClient, writers: number) {
  let running = true;
  let acked = 0;
  let failed = 0;
  const codes = new Map<string, number>();
  const done = Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      for (let s = 0; running; s++) {
        try {
          await client.put(
            TABLE,
            key8(w * 7919 + s),
            FAMILY,
            QUALIFIER,
            value,
          );
          acked++;
        } catch (e) {
          failed++;
          const code = e instanceof TablesClientError ? e.code : String(e);
          codes.set(code, (codes.get(code) ?? 0) + 1);
        }
      }
    }),
  );
  return {
    get acked() {
      return acked;
    },
    get failed() {
      return failed;
    },
    /** Failures by error code: "unknown_outcome: 3, …". */
    get failures() {
      return [...codes].map(([c, n]) => `${c}: ${n}`).join(", ") || "none";
    },
    async stop() {
      running = false;
      await done;
    },
  };
}

/**
 * Splits the largest served tablet, one split after another, under a write
 * load, each until both halves are served, for SPLIT_WINDOW_MS or
 * MAX_SPLITS splits.
 */
async function measureSplits(
  client: TablesClient,
  admin: TablesClient,
  prober: TablesClient,
) {
  const load = backgroundWriters(client, BACKGROUND_WRITERS);
  const started = performance.now();
  let splits = 0;
  let refused = 0;
  const times: number[] = [];
  try {
    while (
      splits < MAX_SPLITS &&
      (splits === 0 || performance.now() - started < SPLIT_WINDOW_MS)
    ) {
      const ts = await servedTablets(admin);
      const biggest = ts.reduce((a, b) =>
        (b.bytes ?? 0) > (a.bytes ?? 0) ? b : a
      );
      const t0 = performance.now();
      let halves: TabletInfo[];
      try {
        halves = await admin.splitTablet(biggest.id);
      } catch (e) {
        if (!(e instanceof TablesClientError)) throw e;
        // A tablet the master is moving (listed at its new server before
        // that server opened it), or one too small to split: try again.
        refused++;
        console.log(`    split of ${biggest.id} refused: ${e.message}`);
        if (refused > 20) break;
        await sleep(500);
        continue;
      }
      // Served = a row of each half reads back (the map lists the halves
      // before their server has opened them).
      await Promise.all(
        halves.map((h) => untilRowAnswers(prober, firstRow(h), t0)),
      );
      times.push(performance.now() - t0);
      splits++;
    }
  } finally {
    await load.stop();
  }
  const minutes = (performance.now() - started) / 60_000;
  const elapsedS = minutes * 60;
  times.sort((a, b) => a - b);
  suite.metric("splits done", splits);
  suite.metric("splits refused", refused);
  suite.metric("splits per minute under load", splits / minutes);
  suite.metric(
    "split until both halves served, median s",
    times.length ? times[Math.floor(times.length / 2)]! / 1000 : NaN,
  );
  suite.metric(
    "puts/s by the writers during the splits",
    load.acked / elapsedS,
  );
  suite.metric("puts failed during the splits", load.failed);
  const g = `put ×${BACKGROUND_WRITERS} clients`;
  if (suite.results.some((r) => r.group === g && r.name === NAME)) {
    suite.compare(
      `puts by ${BACKGROUND_WRITERS} writers during splits ÷ without`,
      "throughput",
      load.acked / elapsedS,
      suite.get(g, NAME).opsPerSec,
    );
  }
  console.log(
    `  splits: ${splits} in ${elapsedS.toFixed(1)} s = ${
      (splits / minutes).toFixed(1)
    }/min under ${BACKGROUND_WRITERS} writers (${
      (load.acked / elapsedS).toFixed(0)
    } puts/s, ${load.failed} failed)`,
  );
}

/**
 * `kill -9` of the tablet server holding the most tablets under a write
 * load; then the time until a row of each of its tablets reads back.
 */
async function measureRecovery(
  stack: TablesStack,
  client: TablesClient,
  admin: TablesClient,
  prober: TablesClient,
) {
  const ts = await servedTablets(admin);
  const counts = new Map<string, number>();
  for (const t of ts) counts.set(t.server!, (counts.get(t.server!) ?? 0) + 1);
  const victim = [...counts].sort((a, b) => b[1] - a[1])[0]![0];
  const lost = ts.filter((t) => t.server === victim);
  const probes = lost.map(firstRow);
  for (const p of probes) {
    const row = await client.getRow(TABLE, p);
    if (row.cells.length !== 1) throw new Error(`probe row ${p} is missing`);
  }
  const load = backgroundWriters(client, BACKGROUND_WRITERS);
  await sleep(QUICK ? 300 : 2000);
  const [ackedBefore, failedBefore] = [load.acked, load.failed];
  const killedAt = performance.now();
  await stack.signal("server", victim, "SIGKILL");
  const servedAfter = await Promise.all(
    probes.map((p) => untilRowAnswers(prober, p, killedAt)),
  );
  await load.stop();
  const worst = Math.max(...servedAfter);
  suite.metric("kill -9: tablets on the killed server", lost.length);
  suite.metric("kill -9: all its rows served again, s", worst / 1000);
  suite.metric(
    "kill -9: first of its tablets served again, s",
    Math.min(...servedAfter) / 1000,
  );
  suite.metric(
    "kill -9: puts acknowledged during the recovery",
    load.acked - ackedBefore,
  );
  suite.metric(
    "kill -9: puts failed during the recovery",
    load.failed - failedBefore,
  );
  suite.metric("kill -9: failed puts by error", load.failures);
  console.log(
    `  kill -9 of ${victim} (${lost.length} tablets) under ${BACKGROUND_WRITERS} writers: all its rows served again after ${
      (worst / 1000).toFixed(2)
    } s (session TTL ${TTL_MS / 1000} s)`,
  );
}

// --- the run ---

const hasEtcd = (await findEtcd()) !== undefined;
const dataRoot = await Deno.makeTempDir({ prefix: "strata-bench-tables-" });
let stack: TablesStack | undefined;
let etcd: EtcdCluster | undefined;
/** The load generator's HTTP stack for puts, on both sides. */
const http1 = new Http1Client();
try {
  console.log(
    `starting the tables stack (kv ×3, ${
      USE_GFS ? "GFS ×3+3, " : ""
    }masters ×2, tablet servers ×3)…`,
  );
  const t0 = performance.now();
  stack = await startTablesStack({
    dataRoot,
    masters: 2,
    servers: 3,
    sessionTtlMs: TTL_MS,
    reconcileMs: 500,
    ...(USE_GFS ? { gfs: { masters: 3, chunkservers: 3 } } : {}),
  });
  suite.metric("tables stack start, s", (performance.now() - t0) / 1000);
  const tokens = stack.secrets.tokens;
  // Generous deadlines: a loaded machine must show as latency, not errors.
  const client = new TablesClient(stack.masterUrls(), {
    token: tokens.write,
    timeoutMs: 60_000,
    http1,
  });
  const admin = new TablesClient(stack.masterUrls(), {
    token: tokens.admin,
    timeoutMs: 60_000,
  });
  const splits = Array.from(
    { length: TABLETS - 1 },
    (_, i) => key8(Math.round(((i + 1) * KEYS) / TABLETS)),
  );
  await admin.createTable(TABLE, [{ name: FAMILY }], splits);
  await spread(admin, [...stack.servers.keys()].sort());
  console.log("prefilling tables…");
  const tables = tablesTarget(client, stack);
  await prefill((k) => tables.put(k));

  const targets: Target[] = [tables];
  if (hasEtcd) {
    console.log("starting a 3-member etcd cluster…");
    etcd = await startEtcdCluster(3);
    suite.metric("etcd version", etcd.version);
    const e = etcdTarget(etcd, http1);
    console.log("prefilling etcd…");
    await prefill((k) => e.put(k));
    targets.push(e);
  } else {
    console.log("etcd is not installed (apt-get install -y etcd-server)");
    suite.metric("etcd", "not installed");
  }

  await measureLoads(targets);
  if (etcd) {
    await etcd.stop();
    etcd = undefined;
    for (const c of CONCURRENCY) {
      for (const op of ["put", "get"]) {
        const g = `${op} ×${c} clients`;
        const goal = op === "put" && c === 256;
        suite.compare(
          `${g}: throughput tables ÷ etcd`,
          "throughput",
          suite.get(g, NAME).opsPerSec,
          suite.get(g, "etcd").opsPerSec,
          goal ? { op: ">=", value: 2 } : undefined,
        );
        suite.compare(
          `${g}: p99 tables ÷ etcd`,
          "p99 latency",
          suite.get(g, NAME).p99Ns,
          suite.get(g, "etcd").p99Ns,
        );
        const cpu = (name: string) =>
          suite.metrics[`${g} · ${name}: service CPU ms per request`] as number;
        suite.compare(
          `${g}: service CPU per request tables ÷ etcd`,
          "CPU time",
          cpu(NAME),
          cpu("etcd"),
        );
      }
    }
  }

  // Its own client, one try per read, for the split and recovery timings.
  const prober = new TablesClient(stack.masterUrls(), {
    token: tokens.read,
    timeoutMs: 2000,
    retryForMs: 200,
  });
  console.log("splits under load…");
  await measureSplits(client, admin, prober);
  console.log("kill -9 of a tablet server under load…");
  await measureRecovery(stack, client, admin, prober);
  suite.metric("load average at end", loadavg());
} finally {
  http1.close();
  await etcd?.stop();
  await stack?.stop();
  await Deno.remove(dataRoot, { recursive: true }).catch(() => {});
}
await suite.finish();
