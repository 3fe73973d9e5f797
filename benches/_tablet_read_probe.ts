/**
 * Probe of bench:tablet's read phases (readrandom, seekrandom) on a tablet
 * filled once: `deno run -A benches/_tablet_read_probe.ts fill <dir>` does
 * the bench's 1M-row fillrandom into `<dir>` (TABLET_BENCH_KEYS sets
 * another count); `... read <dir> [rounds] [read|seek]` reopens it (the log replays
 * into the memtable, as after the bench's fill) and times the bench's
 * reads and seeks, printing p50, mean, p99 and process CPU per op. For
 * A/B of read-path changes and `--cpu-prof`; not part of any suite.
 */
import { openTablet, type Tablet } from "@strata/tables/tablet";
import { fillRandomOrder, SAME_ENGINE } from "./db_bench.ts";

const [mode, dir, roundsArg, only] = Deno.args;
if (
  (mode !== "fill" && mode !== "read" && mode !== "both") || dir === undefined
) {
  console.error("usage: _tablet_read_probe.ts fill|read|both <dir> [rounds]");
  Deno.exit(2);
}
const N = Number(Deno.env.get("TABLET_BENCH_KEYS") ?? 1_000_000);
const READS = 100_000;
const SEEKS = 20_000;
const SCHEMA = { name: "bench", families: [{ name: "f" }] };
const ALL = { start: new Uint8Array(0), end: null };
const KEY = new Uint8Array(16);
function key(i: number): Uint8Array {
  for (let j = 15; j >= 0; j--) {
    KEY[j] = 48 + i % 10;
    i = Math.floor(i / 10);
  }
  return KEY;
}

/** Minor page faults of this process so far (/proc/self/stat). */
function faults(): number {
  const f = Deno.readTextFileSync("/proc/self/stat").split(") ")[1]!.split(" ");
  return Number(f[7]);
}

/** Process CPU (user + system) in ms, from /proc/self/stat's clock ticks (10 ms). */
function cpuMs(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat").split(") ")[1]!
    .split(" ");
  return (Number(stat[11]) + Number(stat[12])) * 10;
}

async function phase(
  name: string,
  n: number,
  fn: () => Promise<void>,
): Promise<void> {
  const lat = new Float64Array(n);
  const c0 = cpuMs();
  const f0 = faults();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    await fn();
    lat[i] = performance.now() - s;
  }
  const ms = performance.now() - t0;
  const cpu = cpuMs() - c0;
  const pf = (faults() - f0) / n;
  lat.sort();
  const us = (q: number) => (lat[Math.floor(q * (n - 1))]! * 1000).toFixed(1);
  console.log(
    `${name}: ${(n / ms * 1000 / 1000).toFixed(1)}k ops/s  p50 ${us(0.5)} µs` +
      `  mean ${(ms / n * 1000).toFixed(1)} µs  p99 ${us(0.99)} µs` +
      `  cpu/op ${(cpu / n * 1000).toFixed(1)} µs  faults/op ${
        pf.toFixed(2)
      }  load ${Deno.readTextFileSync("/proc/loadavg").split(" ")[0]}`,
  );
}

if (mode === "fill" || mode === "both") {
  const t = await openTablet(dir, SCHEMA, ALL, {
    lsm: { ...SAME_ENGINE, sync: "never" },
  });
  const values = Array.from(
    { length: 1024 },
    () => crypto.getRandomValues(new Uint8Array(100)),
  );
  const order = fillRandomOrder(N);
  for (let i = 0; i < N; i++) {
    await t.mutateRow(key(order[i]!), [{
      op: "put",
      family: "f",
      qualifier: new Uint8Array(0),
      value: values[i % values.length]!,
    }]);
  }
  if (mode === "both") {
    // As bench:tablet does: the reads follow the fill in the same process,
    // without a turn of the event loop in between.
    await reads(t);
  }
  await t.close();
} else {
  const t: Tablet = await openTablet(dir, SCHEMA, ALL, {
    lsm: { ...SAME_ENGINE, sync: "never" },
  });
  await reads(t);
  await t.close();
}

/** The read rounds (`rounds`, default 1; `only` read or seek). */
async function reads(t: Tablet): Promise<void> {
  const rounds = Number(roundsArg ?? 1);
  for (let r = 0; r < rounds; r++) {
    if (only !== "seek") {
      await phase("readrandom", READS, async () => {
        await t.getRow(key(Math.floor(Math.random() * N)));
      });
    }
    if (only === "read") continue;
    await phase("seekrandom", SEEKS, async () => {
      for await (
        const _ of t.scan({
          start: key(Math.floor(Math.random() * N)),
          limit: 10,
        })
      ) { /* rows */ }
    });
  }
}
