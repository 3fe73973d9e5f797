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
 * ops/s per line. The fillrandom keys are drawn with replacement, as
 * db_bench draws them, so readrandom finds about 63% of its keys on both
 * sides (both found shares are recorded).
 */
import { LsmStore } from "@strata/lsm";
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
const strataOptions = SAME_ENGINE;

const suite = new Suite(
  "lsm",
  `one-tablet LSM engine vs RocksDB db_bench: ${N} keys (sync on: ${N_SYNC} writes), 16 B keys, 100 B values, 1 thread`,
);
suite.metric("keys", N);
suite.metric("sync writes", N_SYNC);
suite.metric("reads", READS);
suite.metric("seeks", SEEKS);
suite.metric("memtable bytes (both)", SAME_ENGINE.memtableBytes);
suite.metric("block cache bytes (both)", SAME_ENGINE.blockCacheBytes);

const enc = new TextEncoder();
const key = (i: number) => enc.encode(String(i).padStart(16, "0"));
// Keys and values are made before timing (db_bench too draws values from a
// pre-generated buffer), so the lines measure the engine, not formatting.
const KEYS = Array.from({ length: N }, (_, i) => key(i));
const VALUES = Array.from(
  { length: 1024 },
  () => crypto.getRandomValues(new Uint8Array(VALUE)),
);
const value = (i: number) => VALUES[i % VALUES.length]!;

function record(line: string, name: string, t: Timing): void {
  recordTiming(suite, line, name, t);
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
  // Drawn with replacement, as db_bench's fillrandom does (the readrandom
  // after it finds about 63% of its keys on both sides).
  const order = fillRandomOrder(N);
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
    // 1 - 1/e of the keys exist; the reads find about that share.
    if (Math.abs(found / READS - (1 - 1 / Math.E)) > 0.08) {
      throw new Error(`readrandom found ${found} of ${READS}`);
    }
    suite.metric("strata readrandom found share", found / READS);
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

  // RocksDB, and the ratios
  await compareWithRocksDb(suite, root, {
    keys: N,
    syncWrites: N_SYNC,
    reads: READS,
    valueBytes: VALUE,
    extraArgs: SAME_ENGINE_ARGS,
  }, "strata lsm");
} finally {
  await Deno.remove(root, { recursive: true });
}
await suite.finish();
