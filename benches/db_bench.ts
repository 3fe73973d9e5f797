/**
 * Shared by the benches that compare an engine with RocksDB's own
 * `db_bench` (Debian `rocksdb-tools`): finding and running db_bench,
 * parsing its lines, and timing strata's side the way db_bench's single
 * thread runs (one operation after another).
 */
import { percentile, type Suite } from "./harness.ts";

/** Throughput and per-operation latency (ns) of one line. */
export interface Timing {
  opsPerSec: number;
  p50Ns: number;
  p99Ns: number;
}

/** Runs `n` operations one after another, as db_bench's single thread does. */
export async function timed(
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

/**
 * The key numbers of a fillrandom of `n` writes over `n` keys, drawn as
 * db_bench's fillrandom draws them: uniformly with replacement (its
 * `RANDOM` write mode), so about 63% (1 - 1/e) of the keys exist after it
 * and a readrandom over all `n` finds about that share, on both sides.
 */
export function fillRandomOrder(n: number): number[] {
  return Array.from({ length: n }, () => Math.floor(Math.random() * n));
}

/** The db_bench binary, or undefined when rocksdb-tools is not installed. */
export async function findDbBench(): Promise<string | undefined> {
  for (const p of ["/usr/bin/db_bench", "/usr/local/bin/db_bench"]) {
    try {
      await Deno.stat(p);
      return p;
    } catch { /* next */ }
  }
  return undefined;
}

/** Runs db_bench; returns each benchmark's timing and the version line. */
export async function runDbBench(
  bin: string,
  args: string[],
): Promise<Map<string, Timing> & { version: string; found?: number }> {
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
    & { version: string; found?: number };
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
  // "readrandom : ... (<found> of <n> found)": the share of reads that hit.
  const found = /^readrandom\s*:.*\((\d+) of (\d+) found\)/m.exec(text);
  if (found !== null) res.found = Number(found[1]) / Number(found[2]);
  return res;
}

/**
 * One engine configuration for both sides of a comparison: RocksDB's
 * defaults for the memtable (64 MiB), block cache (8 MiB) and data blocks
 * (4 KiB), and a 10-bit Bloom filter (strata always has one; db_bench's
 * default is none). Pass {@link SAME_ENGINE} to the strata side and
 * {@link SAME_ENGINE_ARGS} as `extraArgs` to {@link rocksDbLines}.
 */
export const SAME_ENGINE = {
  memtableBytes: 64 * 2 ** 20,
  blockCacheBytes: 8 * 2 ** 20,
  blockBytes: 4096,
  bloomBitsPerKey: 10,
} as const;

/** db_bench's flags for {@link SAME_ENGINE}. */
export const SAME_ENGINE_ARGS: readonly string[] = [
  `--write_buffer_size=${SAME_ENGINE.memtableBytes}`,
  `--cache_size=${SAME_ENGINE.blockCacheBytes}`,
  `--block_size=${SAME_ENGINE.blockBytes}`,
  `--bloom_bits=${SAME_ENGINE.bloomBitsPerKey}`,
];

/** The sizes of a db_bench comparison run. */
export interface DbBenchSizes {
  /** Keys for fillseq, fillrandom (sync off), readrandom and seekrandom. */
  keys: number;
  /** Writes for fillrandom with sync on. */
  syncWrites: number;
  /** Point reads, and seeks (each a seek and 10 entries). */
  reads: number;
  valueBytes: number;
  /** More db_bench flags for both runs (memtable, cache, block, Bloom sizes). */
  extraArgs?: readonly string[];
}

/**
 * Runs RocksDB's db_bench for the five lines the engine benches compare
 * (fillseq, fillrandom sync=0, fillrandom sync=1, readrandom, seekrandom
 * (scan 10)), 16-byte keys, compression off, one thread, in `root`.
 * Undefined (with a note on stdout) when db_bench is not installed.
 */
export async function rocksDbLines(
  root: string,
  sizes: DbBenchSizes,
): Promise<
  | { lines: Map<string, Timing>; version: string; readFound?: number }
  | undefined
> {
  const bin = await findDbBench();
  if (bin === undefined) {
    console.log(
      "\nRocksDB db_bench NOT FOUND: install it with `apt-get install -y rocksdb-tools`; no RocksDB figures or ratios in this run.",
    );
    return undefined;
  }
  const common = [
    "--key_size=16",
    `--value_size=${sizes.valueBytes}`,
    "--compression_type=none",
    "--threads=1",
    "--seek_nexts=10",
    `--db=${root}/rocksdb`,
    ...(sizes.extraArgs ?? []),
  ];
  const a = await runDbBench(bin, [
    ...common,
    "--benchmarks=fillseq,fillrandom,readrandom,seekrandom",
    `--num=${sizes.keys}`,
    `--reads=${sizes.reads}`,
    "--sync=0",
  ]);
  const b = await runDbBench(bin, [
    ...common,
    "--benchmarks=fillrandom",
    `--num=${sizes.syncWrites}`,
    "--sync=1",
  ]);
  // db_bench's seekrandom ran `reads` seeks; its ops/s is per seek.
  return {
    lines: new Map([
      ["fillseq", a.get("fillseq")!],
      ["fillrandom sync=0", a.get("fillrandom")!],
      ["fillrandom sync=1", b.get("fillrandom")!],
      ["readrandom", a.get("readrandom")!],
      ["seekrandom (scan 10)", a.get("seekrandom")!],
    ]),
    version: b.version,
    readFound: a.found,
  };
}

/** Records one line's timing in `suite` under `name`. */
export function recordTiming(
  suite: Suite,
  line: string,
  name: string,
  t: Timing,
): void {
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

/**
 * Runs db_bench's five lines ({@link rocksDbLines}), records them in
 * `suite` and compares `strataName`'s recorded lines with them (goal: at
 * least 0.5x RocksDB's ops/s per line), or notes that db_bench is missing.
 */
export async function compareWithRocksDb(
  suite: Suite,
  root: string,
  sizes: DbBenchSizes,
  strataName: string,
): Promise<void> {
  const rocks = await rocksDbLines(root, sizes);
  if (rocks === undefined) {
    suite.metric(
      "rocksdb",
      "db_bench missing (apt-get install -y rocksdb-tools)",
    );
    return;
  }
  for (const [line, t] of rocks.lines) {
    recordTiming(suite, line, "rocksdb db_bench", t);
  }
  suite.metric("rocksdb version", rocks.version);
  if (rocks.readFound !== undefined) {
    suite.metric("rocksdb readrandom found share", rocks.readFound);
  }
  for (const line of rocks.lines.keys()) {
    suite.compare(
      `${line}: ${strataName} ÷ RocksDB`,
      "throughput",
      suite.get(line, strataName).opsPerSec,
      suite.get(line, "rocksdb db_bench").opsPerSec,
      { op: ">=", value: 0.5 },
    );
  }
}
