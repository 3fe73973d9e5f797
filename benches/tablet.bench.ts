/**
 * The tables app's storage engine as a tablet uses it (apps/tables/tablet
 * on packages/lsm: row mutations into the commit log, memtable, SSTables,
 * compaction, the cell encoding and version rules on top) on local disk,
 * against RocksDB's own `db_bench` (Debian `rocksdb-tools`) in the same
 * run, the same five lines as bench:lsm: fillseq, fillrandom with sync off
 * and on, readrandom, seekrandom (a seek and 10 rows). One cell per row (a
 * 16-byte row key, one family, an empty qualifier, a 100-byte value); a
 * put is `mutateRow`, a read `getRow`, a seek `scan({ start, limit: 10 })`.
 * One operation after another on both sides, the same engine
 * configuration on both (`SAME_ENGINE` in db_bench.ts). Goal: at least 0.5x
 * RocksDB's ops/s per line (the goal for the engine). The
 * fillrandom keys are drawn with replacement, as db_bench draws them, so
 * readrandom finds about 63% of its keys on both sides (both found shares
 * are recorded).
 */
import { openTablet, type Tablet } from "@strata/tables/tablet";
import {
  compareWithRocksDb,
  fillRandomOrder,
  recordTiming,
  SAME_ENGINE,
  SAME_ENGINE_ARGS,
  timed,
  type Timing,
} from "./db_bench.ts";
import { QUICK, Suite } from "./harness.ts";

/**
 * Rows: the 1,000,000 (`TABLET_BENCH_KEYS` sets another count,
 * e.g. 200000 for a shorter run; quick mode keeps 5,000).
 */
const N = QUICK ? 5_000 : keysFromEnv(1_000_000);
const N_SYNC = QUICK ? 200 : 2_000;
const READS = QUICK ? 2_000 : 100_000;
/**
 * As many seeks as db_bench's seekrandom makes (it runs `--reads` of them).
 * With 20,000 the tablet's line weighed its first seeks (the scan path's
 * JIT warm-up, the block cache turning over from point-read blocks to
 * seek blocks) five times more than db_bench's line weighs its own.
 */
const SEEKS = READS;
const VALUE = 100;

function keysFromEnv(fallback: number): number {
  const v = Deno.env.get("TABLET_BENCH_KEYS");
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1_000) {
    throw new Error(`TABLET_BENCH_KEYS must be an integer >= 1000, got ${v}`);
  }
  return n;
}

const suite = new Suite(
  "tablet",
  `one tablet (BigTable cells on the LSM engine) vs RocksDB db_bench: ${N} rows (sync on: ${N_SYNC} writes), 16 B row keys, 100 B values, 1 thread`,
);
suite.metric("rows", N);
suite.metric("sync writes", N_SYNC);
suite.metric("reads", READS);
suite.metric("seeks", SEEKS);

/**
 * Row key `i` (16 decimal digits, zero-padded), written into one reused
 * buffer as db_bench writes each operation's key into its own buffer: no
 * table of N keys scattered over the heap for the reads to miss in the
 * cache. Each operation is awaited before the next key is written (the
 * tablet copies what it keeps before it answers).
 */
const KEY = new Uint8Array(16);
function key(i: number): Uint8Array {
  for (let j = 15; j >= 0; j--) {
    KEY[j] = 48 + i % 10;
    i = Math.floor(i / 10);
  }
  return KEY;
}
const VALUES = Array.from(
  { length: 1024 },
  () => crypto.getRandomValues(new Uint8Array(VALUE)),
);
const QUALIFIER = new Uint8Array(0);
const SCHEMA = { name: "bench", families: [{ name: "f" }] };
const ALL = { start: new Uint8Array(0), end: null };

function put(t: Tablet, k: number, v: number) {
  return t.mutateRow(key(k), [{
    op: "put",
    family: "f",
    qualifier: QUALIFIER,
    value: VALUES[v % VALUES.length]!,
  }]);
}

function record(line: string, name: string, t: Timing): void {
  recordTiming(suite, line, name, t);
}

const NAME = "strata tablet";
const root = await Deno.makeTempDir({ prefix: "strata-bench-tablet-" });
try {
  {
    const t = await openTablet(`${root}/seq`, SCHEMA, ALL, {
      lsm: { ...SAME_ENGINE, sync: "never" },
    });
    record("fillseq", NAME, await timed(N, (i) => put(t, i, i)));
    await t.close();
  }
  // Drawn with replacement, as db_bench's fillrandom does (the readrandom
  // after it finds about 63% of its keys on both sides).
  const order = fillRandomOrder(N);
  {
    const t = await openTablet(`${root}/sync`, SCHEMA, ALL, {
      lsm: { ...SAME_ENGINE, sync: "always" },
    });
    record(
      "fillrandom sync=1",
      NAME,
      await timed(N_SYNC, (i) => put(t, order[i]!, i)),
    );
    await t.close();
  }
  {
    const t = await openTablet(`${root}/rand`, SCHEMA, ALL, {
      lsm: { ...SAME_ENGINE, sync: "never" },
    });
    record(
      "fillrandom sync=0",
      NAME,
      await timed(N, (i) => put(t, order[i]!, i)),
    );
    let found = 0;
    const r = await timed(READS, async () => {
      const row = await t.getRow(key(Math.floor(Math.random() * N)));
      if (row?.cells.length === 1) found++;
    });
    // 1 - 1/e of the keys exist; the reads find about that share.
    if (Math.abs(found / READS - (1 - 1 / Math.E)) > 0.08) {
      throw new Error(`readrandom found ${found} of ${READS}`);
    }
    suite.metric("strata readrandom found share", found / READS);
    record("readrandom", NAME, r);
    let rows = 0;
    record(
      "seekrandom (scan 10)",
      NAME,
      await timed(SEEKS, async () => {
        for await (
          const _ of t.scan({
            start: key(Math.floor(Math.random() * N)),
            limit: 10,
          })
        ) rows++;
      }),
    );
    if (rows < SEEKS * 9) throw new Error(`seeks returned only ${rows} rows`);
    suite.metric("strata bytes after fillrandom", t.approximateBytes());
    await t.close();
  }

  await compareWithRocksDb(suite, root, {
    keys: N,
    syncWrites: N_SYNC,
    reads: READS,
    valueBytes: VALUE,
    extraArgs: SAME_ENGINE_ARGS,
  }, NAME);
} finally {
  await Deno.remove(root, { recursive: true });
}
await suite.finish();
