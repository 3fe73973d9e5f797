import assert from "node:assert/strict";
import fc from "fast-check";
import { RateWindow } from "./rate_window.ts";

Deno.test("a rate is the counter's growth per second over the window", () => {
  const w = new RateWindow(2000);
  assert.deepEqual(w.rates(), {});
  w.push({ atMs: 0, counters: { bytes: 0, msgs: 10 } });
  assert.deepEqual(w.rates(), { bytes: 0, msgs: 0 });
  w.push({ atMs: 500, counters: { bytes: 500, msgs: 10 } });
  w.push({ atMs: 1000, counters: { bytes: 1000, msgs: 20 } });
  assert.deepEqual(w.rates(), { bytes: 1000, msgs: 10 });
});

Deno.test("a counter that restarts from zero never gives a negative rate", () => {
  const w = new RateWindow(10_000);
  w.push({ atMs: 0, counters: { bytes: 5000 } });
  w.push({ atMs: 1000, counters: { bytes: 6000 } });
  w.push({ atMs: 2000, counters: { bytes: 400 } }); // process restarted
  assert.equal(w.rates().bytes, (1000 + 400) / 2);
});

Deno.test("old scrapes leave the window and stale or repeated times are ignored", () => {
  const w = new RateWindow(1000);
  w.push({ atMs: 0, counters: { n: 0 } });
  w.push({ atMs: 500, counters: { n: 1000 } });
  w.push({ atMs: 500, counters: { n: 99_999 } });
  w.push({ atMs: 1000, counters: { n: 1000 } });
  w.push({ atMs: 1500, counters: { n: 1000 } });
  w.push({ atMs: 2000, counters: { n: 1000 } });
  assert.equal(w.rates().n, 0);
});

Deno.test("rates are never negative and equal total growth over time for monotonic counters", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: 1, max: 300 }), fc.nat(10_000)), {
        minLength: 2,
        maxLength: 30,
      }),
      (steps) => {
        const w = new RateWindow(1_000_000);
        let t = 0, v = 0;
        w.push({ atMs: 0, counters: { c: 0 } });
        for (const [dt, dv] of steps) {
          t += dt;
          v += dv;
          w.push({ atMs: t, counters: { c: v } });
        }
        const r = w.rates().c!;
        assert.ok(r >= 0);
        assert.ok(Math.abs(r - v / (t / 1000)) < 1e-6 * Math.max(1, r));
      },
    ),
  );
});
