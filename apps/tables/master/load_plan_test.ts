import { deepStrictEqual, equal } from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { TabletRecord } from "../shared/kv_layout.ts";
import {
  DEFAULT_LOAD_POLICY,
  type LoadPolicy,
  planLoadMove,
  planLoadSplits,
  planMerge,
  sustained,
  type TabletLoad,
} from "./load_plan.ts";

const b = (s: string) => Buffer.from(s).toString("base64");
const tablet = (
  id: string,
  server: string | null,
  start = "",
  end: string | null = null,
  table = "t",
): TabletRecord => ({
  id,
  table,
  start: b(start),
  end: end === null ? null : b(end),
  dir: `${table}/${id}`,
  server,
});
const load = (ops: number, bytes = 100, splitKey?: string): TabletLoad => ({
  bytes,
  writesPerSec: ops,
  readsPerSec: 0,
  ...(splitKey ? { splitKey: b(splitKey) } : {}),
});
const policy: LoadPolicy = {
  ...DEFAULT_LOAD_POLICY,
  splitOps: 100,
  splitAfterMs: 5000,
  mergeBytes: 1000,
  mergeOps: 1,
  mergeAfterMs: 10_000,
};

Deno.test("sustained: a tablet keeps its first time while it meets the test, loses it after", () => {
  const hot = (l: TabletLoad) => l.writesPerSec >= 100;
  let since = sustained(
    new Map(),
    new Map([["a", load(150)], ["b", load(5)]]),
    hot,
    0,
  );
  deepStrictEqual([...since], [["a", 0]]);
  since = sustained(
    since,
    new Map([["a", load(120)], ["b", load(200)]]),
    hot,
    3000,
  );
  deepStrictEqual([...since], [["a", 0], ["b", 3000]]);
  since = sustained(
    since,
    new Map([["a", load(50)], ["b", load(200)]]),
    hot,
    4000,
  );
  deepStrictEqual([...since], [["b", 3000]]);
});

Deno.test("load splits: only tablets hot long enough, with a key, hottest first", () => {
  const tablets = [
    tablet("a", "s1"),
    tablet("b", "s1"),
    tablet("c", "s2"),
    tablet("d", "s2"),
  ];
  const loads = new Map([
    ["a", load(150, 10, "m")],
    ["b", load(500, 10, "q")],
    ["c", load(150, 10)], // one hot row: no key
    ["d", load(90, 10, "x")], // fell under the threshold
  ]);
  const since = new Map([["a", 0], ["b", 1000], ["c", 0], ["d", 0]]);
  deepStrictEqual(
    planLoadSplits(tablets, loads, since, 4000, policy).map((s) => s.tablet.id),
    [],
    "not hot for 5 s yet",
  );
  const plan = planLoadSplits(tablets, loads, since, 6000, policy);
  deepStrictEqual(plan.map((s) => [s.tablet.id, s.key]), [["b", b("q")], [
    "a",
    b("m"),
  ]]);
  equal(
    planLoadSplits(tablets, loads, since, 6000, { ...policy, splitOps: 0 })
      .length,
    0,
  );
});

Deno.test("merges: the smallest adjacent pair of one table, both cold long enough and small enough", () => {
  const tablets = [
    tablet("a", "s1", "", "g"),
    tablet("b", "s2", "g", "m"),
    tablet("c", "s1", "m", "t"),
    tablet("d", "s1", "t", null),
    tablet("x", "s1", "", null, "other"),
  ];
  const loads = new Map([
    ["a", load(0, 300)],
    ["b", load(0, 300)],
    ["c", load(0, 100)],
    ["d", load(0, 150)],
    ["x", load(0, 1)],
  ]);
  const cold = new Map([["a", 0], ["b", 0], ["c", 0], ["d", 0], ["x", 0]]);
  const live = new Set(["s1", "s2"]);
  const m = planMerge(tablets, loads, cold, live, 20_000, policy);
  deepStrictEqual([m?.left.id, m?.right.id, m?.bytes], ["c", "d", 250]);
  // Not cold long enough; too big together; a dead server; merges off.
  equal(planMerge(tablets, loads, cold, live, 5000, policy), undefined);
  deepStrictEqual(
    planMerge(tablets, loads, cold, live, 20_000, {
      ...policy,
      mergeBytes: 240,
    }),
    undefined,
  );
  const warm = new Map(cold);
  warm.delete("d");
  deepStrictEqual(
    [planMerge(tablets, loads, warm, live, 20_000, policy)?.left.id],
    ["b"],
    "c+d is out; b+c (400 bytes, across servers) is smaller than a+b (600)",
  );
  equal(
    planMerge(tablets, loads, warm, new Set(["s1"]), 20_000, policy),
    undefined,
  );
  equal(
    planMerge(tablets, loads, cold, live, 20_000, { ...policy, mergeBytes: 0 }),
    undefined,
  );
});

Deno.test("load moves: from the busiest server (with more tablets) the tablet that evens the load best", () => {
  const tablets = [
    tablet("a", "s1"),
    tablet("b", "s1"),
    tablet("c", "s1"),
    tablet("d", "s2"),
    tablet("e", "s2"),
  ];
  const loads = new Map([
    ["a", load(400)],
    ["b", load(350)],
    ["c", load(50)],
    ["d", load(10)],
    ["e", load(10)],
  ]);
  const live = new Set(["s1", "s2"]);
  const m = planLoadMove(tablets, loads, live, policy);
  deepStrictEqual([m?.tablet.id, m?.from, m?.to, m?.tablet.server], [
    "a",
    "s1",
    "s2",
    "s2",
  ]);
  // Balanced enough, or the busy server holds no more tablets than the idle one.
  loads.set("b", load(20));
  loads.set("a", load(60));
  loads.set("d", load(40));
  loads.set("e", load(40)); // s1 130, s2 80: under 1.5x the mean
  equal(planLoadMove(tablets, loads, live, policy), undefined);
  loads.set("a", load(700));
  equal(
    planLoadMove(
      tablets.filter((t) => t.id !== "c" && t.id !== "b"),
      loads,
      live,
      policy,
    ),
    undefined,
    "s1 holds one hot tablet: moving it only moves the problem",
  );
});
