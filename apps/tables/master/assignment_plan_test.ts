import { deepStrictEqual as assertEquals } from "node:assert/strict";
import type { TabletRecord } from "../shared/kv_layout.ts";
import {
  planOrders,
  planReassignments,
  planRebalance,
} from "./assignment_plan.ts";

const tablet = (id: string, server: string | null): TabletRecord => ({
  id,
  table: "t",
  start: "",
  end: null,
  dir: `t/${id}`,
  server,
});

Deno.test("a dead server's tablets are spread over the live servers, fewest first", () => {
  const tablets = [
    tablet("a", "s1"),
    tablet("b", "s1"),
    tablet("c", "s2"),
    tablet("d", "s3"),
    tablet("e", "s3"),
    tablet("f", null),
  ];
  const plan = planReassignments(tablets, new Set(["s1", "s2"]));
  assertEquals(
    plan.map((r) => [r.tablet.id, r.from, r.to]),
    [["d", "s3", "s2"], ["e", "s3", "s1"], ["f", null, "s2"]],
  );
});

Deno.test("with no live server nothing is reassigned", () => {
  assertEquals(planReassignments([tablet("a", "s1")], new Set()), []);
});

Deno.test("orders open what is assigned but not open and close what is open but not assigned", () => {
  const tablets = [tablet("a", "s1"), tablet("b", "s1"), tablet("c", "s2")];
  const o = planOrders("s1", tablets, new Set(["b", "c", "gone"]));
  assertEquals(o.open.map((t) => t.id), ["a"]);
  assertEquals(o.close, ["c", "gone"]);
});

Deno.test("rebalancing moves one tablet from the busiest live server to the idlest, only when they differ by more than one", () => {
  const tablets = [
    tablet("a", "s1"),
    tablet("b", "s1"),
    tablet("c", "s1"),
    tablet("d", "s2"),
  ];
  const move = planRebalance(tablets, new Set(["s1", "s2", "s3"]));
  assertEquals([move?.tablet.id, move?.from, move?.to], ["a", "s1", "s3"]);
  assertEquals(planRebalance(tablets, new Set(["s1", "s2"])), {
    tablet: { ...tablets[0]!, server: "s2" },
    from: "s1",
    to: "s2",
  });
  assertEquals(
    planRebalance(tablets.slice(1), new Set(["s1", "s2"])),
    undefined,
  );
  assertEquals(
    planRebalance([...tablets, tablet("e", null)], new Set(["s1", "s2", "s3"])),
    undefined,
    "unassigned tablets are placed first",
  );
});
