import assert from "node:assert/strict";
import { fractionUsed, type ServerLoad } from "./placement.ts";
import { planRebalance } from "./rebalancer.ts";

Deno.test("rebalancing moves replicas off an over-full server, gradually", () => {
  const servers: ServerLoad[] = [
    {
      id: "full",
      rack: "",
      capacityBytes: 1000,
      usedBytes: 900,
      load: 0,
      recentCreations: 0,
    },
    {
      id: "a",
      rack: "",
      capacityBytes: 1000,
      usedBytes: 100,
      load: 0,
      recentCreations: 0,
    },
    {
      id: "b",
      rack: "",
      capacityBytes: 2000,
      usedBytes: 200,
      load: 0,
      recentCreations: 0,
    },
  ];
  const holdings = new Map<number, { holders: string[]; bytes: number }>();
  for (let h = 1; h <= 9; h++) {
    holdings.set(h, { holders: ["full"], bytes: 100 });
  }
  const first = planRebalance(servers, holdings, {
    threshold: 0.05,
    maxMoves: 2,
  });
  assert.equal(first.length, 2);
  assert.ok(first.every((m) => m.from === "full" && m.to !== "full"));
  // Running rounds to the end converges below the threshold.
  const state = new Map(servers.map((s) => [s.id, { ...s }]));
  for (let round = 0; round < 20; round++) {
    const moves = planRebalance([...state.values()], holdings, {
      threshold: 0.05,
      maxMoves: 2,
    });
    if (moves.length === 0) break;
    for (const m of moves) {
      state.get(m.from)!.usedBytes -= 100;
      state.get(m.to)!.usedBytes += 100;
      const h = holdings.get(m.handle)!;
      h.holders = h.holders.map((x) => (x === m.from ? m.to : x));
    }
  }
  const f = [...state.values()].map((s) => fractionUsed(s));
  const mean = 1200 / 4000;
  assert.ok(Math.max(...f) <= mean + 0.05 + 0.1, `${f}`);
});
