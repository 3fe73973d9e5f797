import assert from "node:assert/strict";
import fc from "fast-check";
import type { ServerLoad } from "./placement.ts";
import { planReplication } from "./replication_planner.ts";

const opts = {
  chunkBytes: 1,
  maxRecentCreations: 1e9,
  loadWeight: 0,
  maxClonesPerServer: 2,
  maxNewClones: 100,
};

function servers(n: number): ServerLoad[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `s${i}`,
    rack: "",
    capacityBytes: 1e6,
    usedBytes: 0,
    load: 0,
    recentCreations: 0,
  }));
}

Deno.test("chunks furthest from their goal are cloned first", () => {
  const plan = planReplication(
    [
      { handle: 1, goal: 3, holders: ["s0", "s1"] },
      { handle: 2, goal: 3, holders: ["s2"] },
      { handle: 3, goal: 3, holders: [] },
    ],
    servers(6),
    [],
    { ...opts, maxNewClones: 1 },
  );
  assert.equal(plan.clones[0]!.handle, 2);
  assert.deepEqual(plan.lost, [3]);
});

Deno.test("no server takes part in more clones than the cap, in flight included", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 40 }),
      fc.integer({ min: 1, max: 3 }),
      (holderCounts, cap) => {
        const ss = servers(5);
        const chunks = holderCounts.map((k, i) => ({
          handle: i + 1,
          goal: 3,
          holders: ss.slice(i % 3, (i % 3) + k).map((s) => s.id).slice(0, k),
        }));
        const inflight = [{ handle: 999, source: "s0", target: "s4" }];
        const plan = planReplication(chunks, ss, inflight, {
          ...opts,
          maxClonesPerServer: cap,
        });
        const count = new Map<string, number>([["s0", 1], ["s4", 1]]);
        for (const c of plan.clones) {
          count.set(c.source, (count.get(c.source) ?? 0) + 1);
          count.set(c.target, (count.get(c.target) ?? 0) + 1);
          const chunk = chunks.find((x) => x.handle === c.handle)!;
          assert.ok(chunk.holders.includes(c.source));
          assert.ok(!chunk.holders.includes(c.target));
        }
        for (const n of count.values()) assert.ok(n <= Math.max(cap, 1));
      },
    ),
  );
});

Deno.test("an over-replicated chunk loses its replica on the fullest server", () => {
  const ss = servers(4);
  ss[2]!.usedBytes = 9e5;
  const plan = planReplication(
    [{ handle: 7, goal: 2, holders: ["s0", "s1", "s2"] }],
    ss,
    [],
    opts,
  );
  assert.deepEqual(plan.deletions, [{ handle: 7, server: "s2" }]);
});
