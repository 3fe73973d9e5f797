import assert from "node:assert/strict";
import fc from "fast-check";
import { choosePlacement, fractionUsed, type ServerLoad } from "./placement.ts";

const opts = { chunkBytes: 100, maxRecentCreations: 1000, loadWeight: 0 };

function server(id: string, capacityBytes: number, rack = ""): ServerLoad {
  return { id, rack, capacityBytes, usedBytes: 0, load: 0, recentCreations: 0 };
}

Deno.test("placement never puts two replicas on one server and skips holders", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 8 }),
      fc.integer({ min: 1, max: 5 }),
      (n, k) => {
        const servers = Array.from(
          { length: n },
          (_, i) => server(`s${i}`, 10_000),
        );
        const picked = choosePlacement(servers, k, opts, new Set(["s0"]));
        assert.equal(new Set(picked).size, picked.length);
        assert.ok(!picked.includes("s0"));
        assert.equal(picked.length, Math.min(k, n - 1));
      },
    ),
  );
});

Deno.test("placement spreads replicas over racks before reusing one", () => {
  const servers = [
    server("a1", 1000, "A"),
    server("a2", 1000, "A"),
    server("a3", 1000, "A"),
    server("b1", 5000, "B"),
    server("c1", 5000, "C"),
  ];
  const picked = choosePlacement(servers, 3, opts);
  const racks = new Set(
    picked.map((id) => servers.find((s) => s.id === id)!.rack),
  );
  assert.equal(racks.size, 3);
});

Deno.test("disks of different sizes fill to nearly the same fraction (max/mean < 1.10)", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 50, max: 400 }), {
        minLength: 3,
        maxLength: 8,
      }),
      (caps) => {
        const total0 = caps.reduce((a, b) => a + b, 0);
        // Balance is only possible when no disk must hold over 1/3 of all
        // replicas of 3-way chunks.
        fc.pre(Math.max(...caps) * 3 <= total0);
        const servers = caps.map((c, i) => server(`s${i}`, c * 100));
        const total = caps.reduce((a, b) => a + b, 0);
        // Fill to about 60% with 3 replicas per chunk.
        const chunks = Math.floor(total * 0.6 / 3);
        for (let i = 0; i < chunks; i++) {
          for (const id of choosePlacement(servers, 3, opts)) {
            servers.find((s) => s.id === id)!.usedBytes += 100;
          }
        }
        const f = servers.map((s) => fractionUsed(s));
        const mean = f.reduce((a, b) => a + b, 0) / f.length;
        const smallest = Math.min(...caps);
        // Granularity: one chunk on the smallest disk.
        assert.ok(Math.max(...f) / mean < 1.10 + 1 / smallest / mean, `${f}`);
      },
    ),
    { numRuns: 50 },
  );
});

Deno.test("a server at its recent-creation cap is used only when nothing else fits", () => {
  const fresh = { ...server("new", 100_000), recentCreations: 5 };
  const servers = [fresh, server("old1", 1000), server("old2", 1000)];
  const capped = { ...opts, maxRecentCreations: 5 };
  assert.deepEqual(choosePlacement(servers, 2, capped).sort(), [
    "old1",
    "old2",
  ]);
  assert.equal(choosePlacement(servers, 3, capped).length, 3);
});

Deno.test("a full server gets no new replica", () => {
  const full = { ...server("full", 1000), usedBytes: 950 };
  assert.deepEqual(choosePlacement([full, server("ok", 1000)], 2, opts), [
    "ok",
  ]);
});
