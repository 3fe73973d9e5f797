/**
 * The storage engine of one tablet (packages/lsm: commit log, memtable,
 * SSTables, compaction) on local disk against RocksDB's own `db_bench`
 * (Debian `rocksdb-tools`) in the same run: fillseq, fillrandom with sync
 * off and on, readrandom, seekrandom (a seek and 10 entries), 16-byte keys,
 * 100-byte values, one thread on both sides, compression off in RocksDB
 * (strata does not compress). Both engines get the same memtable size
 * (RocksDB's default 64 MiB), block cache (8 MiB, both defaults), data
 * block size (4 KiB) and Bloom filter (10 bits per key: strata always has
 * one; db_bench gets `--bloom_bits=10`). Goal: at least 0.5x RocksDB's
 * ops/s per line.
 */
import { LsmStore } from "@strata/lsm";
import { percentile, QUICK, Suite } from "./harness.ts";

const KEYS_ENV = Number(Deno.env.get("STRATA_BENCH_LSM_KEYS"));
const N = Number.isSafeInteger(KEYS_ENV) && KEYS_ENV > 0
  ? KEYS_ENV
  : QUICK
  ? 5_000
  : 1_000_000;
const N_SYNC = QUICK ? 200 : 2_000;
const READS = QUICK ? 2_000 : 100_000;
// db_bench's seekrandom runs `--reads` seeks too: the same count here.
const SEEKS = READS;
const VALUE = 100;
/** The engines' shared configuration (RocksDB's defaults, strata set to match). */
const MEMTABLE_BYTES = 64 * 2 ** 20;
const CACHE_BYTES = 8 * 2 ** 20;
const BLOCK_BYTES = 4096;
const BLOOM_BITS = 10;
const strataOptions = {
  memtableBytes: MEMTABLE_BYTES,
  blockCacheBytes: CACHE_BYTES,
  blockBytes: BLOCK_BYTES,
  bloomBitsPerKey: BLOOM_BITS,
};

const suite = new Suite(
  "lsm",
  `one-tablet LSM engine vs RocksDB db_bench: ${N} keys (sync on: ${N_SYNC} writes), 16 B keys, 100 B values, 1 thread`,
);
suite.metric("keys", N);
suite.metric("sync writes", N_SYNC);
suite.metric("reads", READS);
suite.metric("seeks", SEEKS);
suite.metric("memtable bytes (both)", MEMTABLE_BYTES);
suite.metric("block cache bytes (both)", CACHE_BYTES);

const enc = new TextEncoder();
const key = (i: number) => enc.encode(String(i).padStart(16, "0"));
function shuffled(n: number): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}
// Keys and values are made before timing (db_bench too draws values from a
// pre-generated buffer), so the lines measure the engine, not formatting.
const KEYS = Array.from({ length: N }, (_, i) => key(i));
const VALUES = Array.from(
  { length: 1024 },
  () => crypto.getRandomValues(new Uint8Array(VALUE)),
);
const value = (i: number) => VALUES[i % VALUES.length]!;

/** Throughput and per-operation latency (ns) of one line. */
interface Timing {
  opsPerSec: number;
  p50Ns: number;
  p99Ns: number;
}

function record(line: string, name: string, t: Timing): void {
  suite.record({
    group: line,
    name,
    opsPerSec: t.opsPerSec,
    meanNs: 1e9 / t.opsPerSec,
    p50Ns: t.p50Ns,
    p99Ns: t.p99Ns,
    samples: 1,
  });
}

/** Runs `n` operations one after another, as db_bench's single thread does. */
async function timed(
  n: number,
  fn: (i: number) => Promise<unknown>,
): Promise<Timing> {
  const lat = new Float64Array(n);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    await fn(i);
    lat[i] = performance.now() - s;
  }
  const ms = performance.now() - t0;
  const sorted = Array.from(lat).sort((a, b) => a - b);
  return {
    opsPerSec: n / (ms / 1000),
    p50Ns: percentile(sorted, 0.5) * 1e6,
    p99Ns: percentile(sorted, 0.99) * 1e6,
  };
}

const root = await Deno.makeTempDir({ prefix: "strata-bench-lsm-" });
try {
  // strata
  {
    const db = await LsmStore.open(`${root}/seq`, {
      ...strataOptions,
      sync: "never",
    });
    record(
      "fillseq",
      "strata lsm",
      await timed(N, (i) => db.put(KEYS[i]!, value(i))),
    );
    await db.close();
  }
  const order = shuffled(N);
  {
    const db = await LsmStore.open(`${root}/sync`, {
      ...strataOptions,
      sync: "always",
    });
    record(
      "fillrandom sync=1",
      "strata lsm",
      await timed(N_SYNC, (i) => db.put(KEYS[order[i]!]!, value(i))),
    );
    await db.close();
  }
  {
    const db = await LsmStore.open(`${root}/rand`, {
      ...strataOptions,
      sync: "never",
    });
    record(
      "fillrandom sync=0",
      "strata lsm",
      await timed(N, (i) => db.put(KEYS[order[i]!]!, value(i))),
    );
    let found = 0;
    const r = await timed(READS, async () => {
      if (await db.get(KEYS[Math.floor(Math.random() * N)]!) !== undefined) {
        found++;
      }
    });
    if (found !== READS) {
      throw new Error(`readrandom found ${found} of ${READS}`);
    }
    record("readrandom", "strata lsm", r);
    record(
      "seekrandom (scan 10)",
      "strata lsm",
      await timed(SEEKS, async () => {
        let n = 0;
        for await (
          const _ of db.scan({
            start: KEYS[Math.floor(Math.random() * N)]!,
            limit: 10,
          })
        ) n++;
        return n;
      }),
    );
    const s = db.stats();
    suite.metric("strata tables after fillrandom", s.tables);
    suite.metric("strata flushes", s.flushes);
    suite.metric("strata compactions", s.compactions);
    await db.close();
  }

  // RocksDB
  const dbBench = await findDbBench();
  if (dbBench === undefined) {
    console.log(
      "\nRocksDB db_bench NOT FOUND: install it with `apt-get install -y rocksdb-tools`; no RocksDB figures or ratios in this run.",
    );
    suite.metric(
      "rocksdb",
      "db_bench missing (apt-get install -y rocksdb-tools)",
    );
  } else {
    const common = [
      "--key_size=16",
      `--value_size=${VALUE}`,
      "--compression_type=none",
      "--threads=1",
      "--seek_nexts=10",
      `--write_buffer_size=${MEMTABLE_BYTES}`,
      `--cache_size=${CACHE_BYTES}`,
      `--block_size=${BLOCK_BYTES}`,
      `--bloom_bits=${BLOOM_BITS}`,
      `--db=${root}/rocksdb`,
    ];
    const a = await runDbBench(dbBench, [
      ...common,
      "--benchmarks=fillseq,fillrandom,readrandom,seekrandom",
      `--num=${N}`,
      `--reads=${READS}`,
      "--sync=0",
    ]);
    const b = await runDbBench(dbBench, [
      ...common,
      "--benchmarks=fillrandom",
      `--num=${N_SYNC}`,
      "--sync=1",
    ]);
    const seekReads = a.get("seekrandom");
    record("fillseq", "rocksdb db_bench", a.get("fillseq")!);
    record("fillrandom sync=0", "rocksdb db_bench", a.get("fillrandom")!);
    record("fillrandom sync=1", "rocksdb db_bench", b.get("fillrandom")!);
    record("readrandom", "rocksdb db_bench", a.get("readrandom")!);
    record("seekrandom (scan 10)", "rocksdb db_bench", seekReads!);
    suite.metric("rocksdb version", b.version);
    for (
      const line of [
        "fillseq",
        "fillrandom sync=0",
        "fillrandom sync=1",
        "readrandom",
        "seekrandom (scan 10)",
      ]
    ) {
      suite.compare(
        `${line}: strata lsm ÷ RocksDB`,
        "throughput",
        suite.get(line, "strata lsm").opsPerSec,
        suite.get(line, "rocksdb db_bench").opsPerSec,
        { op: ">=", value: 0.5 },
      );
    }
  }
} finally {
  await Deno.remove(root, { recursive: true });
}
await suite.finish();

async function findDbBench(): Promise<string | undefined> {
  for (const p of ["/usr/bin/db_bench", "/usr/local/bin/db_bench"]) {
    try {
      await Deno.stat(p);
      return p;
    } catch { /* next */ }
  }
  return undefined;
}

/** Runs db_bench; returns each benchmark's timing and the version line. */
async function runDbBench(
  bin: string,
  args: string[],
): Promise<Map<string, Timing> & { version: string }> {
  console.log(`  $ ${bin} ${args.join(" ")}`);
  const out = await new Deno.Command(bin, {
    args: [...args, "--histogram=1"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const err = new TextDecoder().decode(out.stderr);
  if (out.code !== 0) throw new Error(`db_bench failed: ${err}`);
  const res = new Map<string, Timing>() as
    & Map<string, Timing>
    & { version: string };
  // "<name> : <µs> micros/op <n> ops/sec ...", later
  // "Percentiles: P50: <µs> P75: <µs> P99: <µs> ..." for the same benchmark.
  const re =
    /^(\w+)\s*:\s*[\d.]+ micros\/op (\d+) ops\/sec[^]*?Percentiles: P50: ([\d.]+) P75: [\d.]+ P99: ([\d.]+)/gm;
  for (const m of text.matchAll(re)) {
    res.set(m[1]!, {
      opsPerSec: Number(m[2]),
      p50Ns: Number(m[3]) * 1000,
      p99Ns: Number(m[4]) * 1000,
    });
  }
  res.version = /RocksDB:\s*version (\S+)/.exec(text + err)?.[1] ?? "unknown";
  return res;
}
