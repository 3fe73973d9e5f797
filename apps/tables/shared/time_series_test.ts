import { deepStrictEqual, equal, ok, throws } from "node:assert/strict";
import { compareBytes } from "@strata/lsm";
import {
  decodePointKey,
  hashSplits,
  pointKey,
  rangeKeys,
  timeSeriesSpecSchema,
} from "./time_series.ts";

const HOUR = 3600_000;
const hashed = timeSeriesSpecSchema.parse({ bucketMs: HOUR, spread: 8 });
const plain = timeSeriesSpecSchema.parse({ bucketMs: HOUR, hashing: false });
const inRange = (k: Uint8Array, r: { start: Uint8Array; end: Uint8Array }) =>
  compareBytes(k, r.start) >= 0 && compareBytes(k, r.end) < 0;

Deno.test("time series: defaults are a week, hashing on, spread 16", () => {
  deepStrictEqual(timeSeriesSpecSchema.parse({}), {
    bucketMs: 7 * 24 * HOUR,
    hashing: true,
    spread: 16,
  });
});

Deno.test("time series: a range's key ranges hold exactly the series' points in the window, bucket by bucket", () => {
  const t0 = 1_796_500_000_000;
  for (const spec of [hashed, plain]) {
    const points: { series: string; t: number }[] = [];
    for (let i = 0; i < 400; i++) {
      points.push({
        series: ["cpu", "cpu2", "cp", "mem"][i % 4]!,
        t: t0 + i * 37_000,
      });
    }
    const [from, to] = [t0 + 2 * HOUR + 5, t0 + 3 * HOUR + 1000];
    const buckets = rangeKeys(spec, "cpu", from, to);
    deepStrictEqual(
      buckets.map((b) => b.ranges.length),
      spec.hashing ? [8, 8] : [1, 1],
      "two buckets, spread ranges each",
    );
    for (const p of points) {
      const key = pointKey(spec, p.series, p.t);
      deepStrictEqual(decodePointKey(spec, key), p);
      const hits = buckets.flatMap((b) => b.ranges).filter((r) =>
        inRange(key, r)
      );
      const want = p.series === "cpu" && p.t >= from && p.t < to;
      equal(hits.length, want ? 1 : 0, `${p.series}@${p.t}`);
    }
    // Within one range, keys sort by time.
    const a = pointKey(spec, "cpu", t0);
    const b = pointKey(spec, "cpu", t0 + 1);
    if (!spec.hashing) ok(compareBytes(a, b) < 0);
  }
  deepStrictEqual(rangeKeys(hashed, "cpu", 10, 10), []);
  throws(() => pointKey(hashed, "cpu", -1), RangeError);
});

Deno.test("time series: hashing spreads one bucket's writes over the key space; without it they share one place", () => {
  const t0 = 1_796_500_000_000;
  const splits = hashSplits(hashed, 4);
  equal(splits.length, 3);
  const perTablet = [0, 0, 0, 0];
  const prefixes = new Set<string>();
  for (let i = 0; i < 4000; i++) {
    const key = pointKey(hashed, "burst", t0 + i);
    prefixes.add(`${key[0]},${key[1]}`);
    perTablet[splits.filter((s) => compareBytes(key, s) >= 0).length]!++;
  }
  equal(prefixes.size, 8, "one prefix per salt");
  ok(perTablet.filter((n) => n > 0).length >= 3, `spread ${perTablet}`);
  deepStrictEqual(hashSplits(plain, 4), []);
  const plainKeys = new Set<string>();
  for (let i = 0; i < 100; i++) {
    plainKeys.add(pointKey(plain, "burst", t0 + i).subarray(0, 8).join());
  }
  equal(plainKeys.size, 1, "one bucket, one prefix");
});
