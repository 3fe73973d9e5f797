import assert from "node:assert/strict";
import fc from "fast-check";
import { Prng } from "./prng.ts";
import { Scheduler } from "./scheduler.ts";

Deno.test("the PRNG repeats its sequence for a seed and differs across seeds", () => {
  const a = new Prng(5);
  const b = new Prng(5);
  const c = new Prng(6);
  const sa = Array.from({ length: 20 }, () => a.nextU32());
  assert.deepEqual(sa, Array.from({ length: 20 }, () => b.nextU32()));
  assert.notDeepEqual(sa, Array.from({ length: 20 }, () => c.nextU32()));
});

Deno.test("PRNG draws stay in range and shuffles are permutations (property)", () => {
  fc.assert(
    fc.property(fc.integer(), fc.integer({ min: 1, max: 1000 }), (seed, n) => {
      const p = new Prng(seed);
      const x = p.int(n);
      assert.ok(x >= 0 && x < n);
      const f = p.float();
      assert.ok(f >= 0 && f < 1);
      const items = Array.from({ length: n % 20 }, (_, i) => i);
      assert.deepEqual(p.shuffle(items).sort((a, b) => a - b), items);
    }),
  );
});

Deno.test("the scheduler runs events in time order, ties in insertion order", () => {
  const s = new Scheduler();
  const log: string[] = [];
  s.at(5, () => log.push("b"));
  s.at(1, () => log.push("a"));
  s.at(5, () => log.push("c"));
  s.at(3, () => s.after(2, () => log.push("d")));
  s.runUntil(10);
  assert.deepEqual(log, ["a", "b", "c", "d"]);
  assert.equal(s.now, 10);
});

Deno.test("the scheduler orders thousands of random events correctly (property)", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 1000 }), { maxLength: 300 }),
      (times) => {
        const s = new Scheduler();
        const seen: number[] = [];
        times.forEach((t, i) => s.at(t, () => seen.push(i)));
        s.runUntil(2000);
        const expected = times.map((t, i) => [t, i] as const)
          .sort((a, b) => a[0] - b[0] || a[1] - b[1]).map(([, i]) => i);
        assert.deepEqual(seen, expected);
      },
    ),
  );
});
