/**
 * bench:storage — the segmented log's group-commit appends against
 * node:sqlite (WAL, synchronous=FULL, the same batching: the pending
 * records of concurrent appenders go into one transaction per commit),
 * needle-volume gets against a bare positioned read and SQLite blob reads,
 * and the log's recovery (open) time.
 *
 * Goals: group-commit append throughput at least 2x SQLite at the same
 * durability; needle get within 1.5x of a bare positioned read.
 */
import { DatabaseSync } from "node:sqlite";
import { closeSync, openSync, readSync } from "node:fs";
import { join } from "node:path";
import { do_not_optimize, measure } from "mitata";
import {
  GroupCommit,
  needleBytes,
  NeedleVolume,
  SegmentedLog,
} from "@strata/storage";
import { percentile, QUICK, Suite } from "./harness.ts";

const suite = new Suite(
  "storage",
  "segmented log group commit vs node:sqlite (WAL, synchronous=FULL), needle get vs positioned read and SQLite blobs, log recovery",
);

const root = await Deno.makeTempDir({ prefix: "strata-bench-storage-" });
const SIZES = [100, 1024, 65536];
const CONCURRENCY = [1, 16, 256];
const RUN_MS = QUICK ? 150 : 600;

function payload(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (seed * 31 + i) & 0xff;
  return out;
}

function sizeLabel(n: number): string {
  return n >= 1024 ? `${n / 1024} KiB` : `${n} B`;
}

interface LoadResult {
  ops: number;
  seconds: number;
  latencies: number[];
  /** Records acknowledged per fdatasync (group commit's batch size). */
  perSync?: number;
}

/** Runs `concurrency` loops calling `op` until the deadline; times each call. */
async function load(
  concurrency: number,
  op: (worker: number) => Promise<unknown>,
): Promise<LoadResult> {
  const latencies: number[] = [];
  const start = performance.now();
  const deadline = start + RUN_MS;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        await op(w);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  return { ops: latencies.length, seconds, latencies };
}

function recordLoad(
  group: string,
  name: string,
  r: LoadResult,
  bytes: number,
) {
  const opsPerSec = r.ops / r.seconds;
  const mean = r.latencies.reduce((a, b) => a + b, 0) / r.latencies.length;
  return suite.record({
    group,
    name,
    opsPerSec,
    meanNs: mean * 1e6,
    p50Ns: percentile(r.latencies, 0.5) * 1e6,
    p99Ns: percentile(r.latencies, 0.99) * 1e6,
    samples: r.ops,
    bytes,
    mbPerSec: (opsPerSec * bytes) / 1e6,
  });
}

// --- appends: strata log vs SQLite, same durability, same batching -------

let run = 0;
const ROUNDS = QUICK ? 1 : 5;

async function strataAppends(size: number, concurrency: number) {
  const records = Array.from({ length: 16 }, (_, i) => payload(size, i));
  const logDir = join(root, `log-${run++}`);
  const log = await SegmentedLog.open(logDir, { sync: "always" });
  const r = await load(
    concurrency,
    (w) => log.append([records[w % records.length]!]),
  );
  r.perSync = r.ops / Math.max(1, log.syncCount);
  await log.close();
  await Deno.remove(logDir, { recursive: true });
  return r;
}

async function sqliteAppends(size: number, concurrency: number) {
  const records = Array.from({ length: 16 }, (_, i) => payload(size, i));
  const dbPath = join(root, `sqlite-${run++}.db`);
  const db = new DatabaseSync(dbPath);
  db.exec("PRAGMA journal_mode=WAL");
  db.exec("PRAGMA synchronous=FULL");
  db.exec("CREATE TABLE log (idx INTEGER PRIMARY KEY, data BLOB NOT NULL)");
  const insert = db.prepare("INSERT INTO log (data) VALUES (?)");
  // Steady state, as strata's preallocated segment is: push the WAL past
  // its 1000-page auto-checkpoint so later commits overwrite WAL bytes that
  // already exist instead of growing the file.
  const warm = new Uint8Array(8192);
  for (let t = 0; t < 8; t++) {
    db.exec("BEGIN");
    for (let i = 0; i < 160; i++) insert.run(warm);
    db.exec("COMMIT");
  }
  db.exec("DELETE FROM log");
  // The same group commit: one transaction (one WAL fsync) per batch of
  // whatever appenders are waiting.
  const commit = new GroupCommit<Uint8Array, number>((batch) => {
    db.exec("BEGIN");
    const ids: number[] = [];
    for (const b of batch) ids.push(Number(insert.run(b).lastInsertRowid));
    db.exec("COMMIT");
    return Promise.resolve(ids);
  });
  const r = await load(
    concurrency,
    (w) => commit.submit(records[w % records.length]!),
  );
  db.close();
  for (const suffix of ["", "-wal", "-shm"]) {
    await Deno.remove(dbPath + suffix).catch(() => {});
  }
  return r;
}

/** The round with the median throughput (the machine is shared: alternate and take the middle). */
function median(rounds: LoadResult[]): LoadResult {
  const sorted = [...rounds].sort((a, b) =>
    a.ops / a.seconds - b.ops / b.seconds
  );
  return sorted[Math.floor(sorted.length / 2)]!;
}

for (const size of SIZES) {
  for (const concurrency of CONCURRENCY) {
    const group = `append ${sizeLabel(size)} ×${concurrency} (sync)`;
    const ours: LoadResult[] = [];
    const theirs: LoadResult[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      ours.push(await strataAppends(size, concurrency));
      theirs.push(await sqliteAppends(size, concurrency));
    }
    const mid = median(ours);
    const s = recordLoad(group, "strata log", mid, size);
    suite.metric(
      `${group}: strata records per fsync`,
      Number((mid.perSync ?? 0).toFixed(1)),
    );
    const q = recordLoad(group, "node:sqlite WAL FULL", median(theirs), size);
    suite.compare(
      `${group}: strata ÷ sqlite`,
      "throughput",
      s.opsPerSec,
      q.opsPerSec,
      concurrency > 1 ? { op: ">=", value: 2 } : undefined,
    );
  }
}

// The CPU ceiling of the append path: the same load with syncing off.
{
  const records = Array.from({ length: 16 }, (_, i) => payload(100, i));
  const logDir = join(root, "log-nosync");
  const log = await SegmentedLog.open(logDir, { sync: "never" });
  const r = await load(256, (w) => log.append([records[w % 16]!]));
  await log.close();
  await Deno.remove(logDir, { recursive: true });
  recordLoad(
    "append 100 B ×256 (sync never: CPU ceiling)",
    "strata log",
    r,
    100,
  );
}

// --- needle get vs bare positioned read vs SQLite blob read --------------

/**
 * Times each contender with mitata in interleaved rounds and keeps each
 * one's best round: on a shared machine the minimum is the estimate least
 * coloured by other processes, and interleaving gives every contender the
 * same chances.
 */
async function interleaved(
  group: string,
  size: number,
  contenders: Array<[string, () => unknown]>,
): Promise<Map<string, number>> {
  const best = new Map<string, Awaited<ReturnType<typeof measure>>>();
  for (let round = 0; round < (QUICK ? 1 : 5); round++) {
    for (const [name, fn] of contenders) {
      const stats = await measure(fn, {
        min_cpu_time: QUICK ? 5e6 : 150e6,
        max_samples: QUICK ? 50 : 1e9,
      });
      const prev = best.get(name);
      if (prev === undefined || stats.avg < prev.avg) best.set(name, stats);
    }
  }
  const means = new Map<string, number>();
  for (const [name, stats] of best) {
    suite.record({
      group,
      name,
      opsPerSec: 1e9 / stats.avg,
      meanNs: stats.avg,
      p50Ns: stats.p50,
      p99Ns: stats.p99,
      samples: stats.samples.length,
      bytes: size,
      mbPerSec: (size * 1e9 / stats.avg) / 1e6,
    });
    means.set(name, stats.avg);
  }
  return means;
}

const N_NEEDLES = QUICK ? 2000 : 20000;
const NEEDLE_SIZES = QUICK ? [1024] : [1024, 16384];

for (const size of NEEDLE_SIZES) {
  const n = N_NEEDLES;
  const group = `random get ${sizeLabel(size)} of ${n}`;
  const db = new DatabaseSync(join(root, `blobs-${size}.db`));
  db.exec("PRAGMA journal_mode=WAL");
  db.exec("CREATE TABLE blobs (k INTEGER PRIMARY KEY, data BLOB NOT NULL)");
  const ins = db.prepare("INSERT INTO blobs (k, data) VALUES (?, ?)");
  db.exec("BEGIN");
  for (let k = 0; k < n; k++) ins.run(k, payload(size, k));
  db.exec("COMMIT");
  const select = db.prepare("SELECT data FROM blobs WHERE k = ?");
  // The same random key sequence for every contender.
  const keys = Uint32Array.from(
    { length: 4096 },
    () => Math.floor(Math.random() * n),
  );
  let i = 0;
  const volumes: NeedleVolume[] = [];
  const offsets: number[] = [];
  for (const checksum of ["crc32c", "crc32"] as const) {
    const vol = await NeedleVolume.open(
      join(root, `volume-${size}-${checksum}`),
      { sync: "never", checksum },
    );
    const pending: Promise<unknown>[] = [];
    for (let k = 0; k < n; k++) {
      pending.push(
        vol.put(k, 0, k * 7 + 1, payload(size, k)).then((loc) =>
          offsets[k] = loc.offset
        ),
      );
      if (pending.length === 256) await Promise.all(pending.splice(0));
    }
    await Promise.all(pending);
    await vol.sync();
    volumes.push(vol);
  }
  const [c32c, c32] = volumes as [NeedleVolume, NeedleVolume];
  // The bare baseline: one pread(2) of the same bytes into a fresh buffer.
  const fd = openSync(join(root, `volume-${size}-crc32`, "volume.dat"), "r");
  const total = needleBytes(size);
  const means = await interleaved(group, size, [
    ["strata needle get (crc32c)", () => {
      const k = keys[i++ & 4095]!;
      do_not_optimize(c32c.getSync(k, 0, k * 7 + 1));
    }],
    ["strata needle get (crc32)", () => {
      const k = keys[i++ & 4095]!;
      do_not_optimize(c32.getSync(k, 0, k * 7 + 1));
    }],
    ["bare positioned read", () => {
      const k = keys[i++ & 4095]!;
      const buf = new Uint8Array(total);
      do_not_optimize(readSync(fd, buf, 0, total, offsets[k]!));
    }],
    ["node:sqlite blob read", () => {
      const k = keys[i++ & 4095]!;
      do_not_optimize(select.get(k));
    }],
  ]);
  closeSync(fd);
  db.close();
  for (const v of volumes) await v.close();
  for (const checksum of ["crc32c", "crc32"]) {
    const get = means.get(`strata needle get (${checksum})`)!;
    suite.compare(
      `${group}: needle get (${checksum}) ÷ bare positioned read`,
      "time",
      get,
      means.get("bare positioned read")!,
      { op: "<=", value: 1.5 },
    );
    suite.compare(
      `${group}: needle get (${checksum}) ÷ node:sqlite blob read`,
      "time",
      get,
      means.get("node:sqlite blob read")!,
    );
  }
}

// --- recovery time of a large log ---------------------------------------

{
  const target = QUICK ? 16 * 2 ** 20 : 2 ** 30;
  const dir = join(root, "recovery");
  const log = await SegmentedLog.open(dir, { sync: "never" });
  const rec = payload(1024 - 16, 3); // 1 KiB on disk per record
  const perAppend = Array.from({ length: 256 }, () => rec);
  let written = 0;
  while (written < target) {
    await log.append(perAppend);
    written += 256 * 1024;
  }
  await log.close();
  const t0 = performance.now();
  const again = await SegmentedLog.open(dir, { sync: "never" });
  const ms = performance.now() - t0;
  const records = again.recovery.records;
  await again.close();
  const gib = written / 2 ** 30;
  suite.record({
    group: `recovery of a ${
      gib >= 1 ? `${gib.toFixed(0)} GiB` : `${written / 2 ** 20} MiB`
    } log (1 KiB records, warm page cache)`,
    name: "strata log open",
    opsPerSec: 1000 / ms,
    meanNs: ms * 1e6,
    p50Ns: ms * 1e6,
    p99Ns: ms * 1e6,
    samples: 1,
    bytes: written,
    mbPerSec: written / 1e6 / (ms / 1000),
  });
  suite.metric("recovery log bytes", written);
  suite.metric("recovery records", records);
  suite.metric("recovery ms", Math.round(ms));
  suite.metric(
    "recovery ms per GiB (extrapolated when smaller)",
    Math.round(ms / gib),
  );
  await Deno.remove(dir, { recursive: true });
}

await Deno.remove(root, { recursive: true });
await suite.finish();
