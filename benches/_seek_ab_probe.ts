/**
 * Probe of bench:tablet's fillrandom, readrandom and seekrandom in one
 * process, as the bench runs them, without RocksDB (about 20 s at
 * 1,000,000 rows): ops/s, p50, mean and process CPU per operation (from
 * /proc/self/stat, 10 ms ticks) per phase, for A/B of the engine
 * between worktrees (`deno run -A benches/_seek_ab_probe.ts`;
 * TABLET_BENCH_KEYS sets another row count). Not part of any suite.
 */
import { openTablet } from "@strata/tables/tablet";
import { fillRandomOrder, SAME_ENGINE } from "./db_bench.ts";
const N = Number(Deno.env.get("TABLET_BENCH_KEYS") ?? 1_000_000);
const OPS = 100_000;
const KEY = new Uint8Array(16);
function key(i: number): Uint8Array {
  for (let j = 15; j >= 0; j--) {
    KEY[j] = 48 + i % 10;
    i = Math.floor(i / 10);
  }
  return KEY;
}
function cpuMs(): number {
  const s = Deno.readTextFileSync("/proc/self/stat").split(") ")[1]!.split(" ");
  return (Number(s[11]) + Number(s[12])) * 10;
}
async function phase(
  name: string,
  n: number,
  fn: (i: number) => Promise<unknown>,
) {
  const lat = new Float64Array(n);
  const c0 = cpuMs();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    await fn(i);
    lat[i] = performance.now() - s;
  }
  const ms = performance.now() - t0;
  const cpu = cpuMs() - c0;
  lat.sort();
  const us = (q: number) => (lat[Math.floor(q * (n - 1))]! * 1000).toFixed(2);
  console.log(
    `${name}: ${(n / ms).toFixed(1)}k ops/s p50 ${us(0.5)} µs mean ${
      (ms / n * 1000).toFixed(2)
    } µs cpu/op ${(cpu / n * 1000).toFixed(2)} µs load ${
      Deno.readTextFileSync("/proc/loadavg").split(" ")[0]
    }`,
  );
}
const values = Array.from(
  { length: 1024 },
  () => crypto.getRandomValues(new Uint8Array(100)),
);
const dir = await Deno.makeTempDir({ prefix: "tabseek4-ab-" });
try {
  const t = await openTablet(
    dir,
    { name: "bench", families: [{ name: "f" }] },
    { start: new Uint8Array(0), end: null },
    { lsm: { ...SAME_ENGINE, sync: "never" } },
  );
  const order = fillRandomOrder(N);
  const q = new Uint8Array(0);
  await phase(
    "fillrandom",
    N,
    (i) =>
      t.mutateRow(key(order[i]!), [{
        op: "put",
        family: "f",
        qualifier: q,
        value: values[i % 1024]!,
      }]),
  );
  await phase(
    "readrandom",
    OPS,
    () => t.getRow(key(Math.floor(Math.random() * N))),
  );
  await phase("seekrandom", OPS, async () => {
    for await (
      const _ of t.scan({
        start: key(Math.floor(Math.random() * N)),
        limit: 10,
      })
    ) { /* */ }
  });
  await t.close();
} finally {
  await Deno.remove(dir, { recursive: true });
}
