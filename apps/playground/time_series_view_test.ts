import assert from "node:assert/strict";
import { timeSeriesView } from "./time_series_view.ts";

const tablets = [
  { id: "t1", server: "ts1" },
  { id: "t2", server: "ts2" },
  { id: "t3", server: "ts3" },
];

Deno.test("time series: points grouped by bucket in time order and by tablet; the busiest tablet's share of the mean", () => {
  const v = timeSeriesView({
    table: "metrics",
    series: "cpu",
    bucketMs: 1000,
    tablets,
    points: [
      { t: 5_200, tablet: "t2" },
      { t: 3_100, tablet: "t1" },
      { t: 3_900, tablet: "t1" },
      { t: 4_000, tablet: "t3" },
      { t: 5_999, tablet: "t1" },
      { t: 6_000, tablet: null },
    ],
  });
  assert.equal(v.points, 6);
  assert.deepEqual(
    v.buckets.map((b) => [b.bucket, b.startMs, b.points, b.byTablet]),
    [
      [3, 3000, 2, { t1: 2 }],
      [4, 4000, 1, { t3: 1 }],
      [5, 5000, 2, { t2: 1, t1: 1 }],
      [6, 6000, 1, {}],
    ],
  );
  // 5 located points over 3 tablets: mean 5/3; t1 holds 3 → 1.8x.
  assert.deepEqual(v.tablets.map((t) => [t.id, t.server, t.points]), [
    ["t1", "ts1", 3],
    ["t2", "ts2", 1],
    ["t3", "ts3", 1],
  ]);
  assert.equal(v.busiest!.tablet, "t1");
  assert.ok(Math.abs(v.busiest!.share - 1.8) < 1e-9);
});

Deno.test("time series: no points, no busiest tablet; only the newest buckets are kept", () => {
  const empty = timeSeriesView({
    table: "m",
    series: "s",
    bucketMs: 1000,
    tablets,
    points: [],
  });
  assert.equal(empty.busiest, null);
  assert.deepEqual(empty.buckets, []);
  const many = timeSeriesView({
    table: "m",
    series: "s",
    bucketMs: 1000,
    tablets,
    points: Array.from(
      { length: 20 },
      (_, i) => ({ t: i * 1000, tablet: "t1" }),
    ),
  }, 5);
  assert.deepEqual(many.buckets.map((b) => b.bucket), [15, 16, 17, 18, 19]);
  assert.equal(many.busiest!.share, 3);
});
