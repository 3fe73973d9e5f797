import assert from "node:assert/strict";
import { ClockGuard } from "./clock_guard.ts";

Deno.test("local clocks that agree are trusted; a wall clock running 10% fast is not", () => {
  const good = new ClockGuard();
  const fast = new ClockGuard();
  for (let t = 0; t <= 5000; t += 100) {
    good.sampleLocal(t, 1e12 + t);
    fast.sampleLocal(t, 1e12 + t * 1.1);
  }
  assert.equal(good.localProblem(5000), undefined);
  assert.match(fast.localProblem(5000)!, /runs at 1\.100x/);
});

Deno.test("a jump of the wall clock against the monotonic clock is suspect for a window", () => {
  const g = new ClockGuard({ windowMs: 2000, maxJumpMs: 500 });
  for (let t = 0; t <= 3000; t += 100) g.sampleLocal(t, 1e12 + t);
  // A suspended machine: the monotonic clock stood still for 10 s.
  g.sampleLocal(3100, 1e12 + 13_100);
  assert.match(g.localProblem(3100)!, /moved 10000 ms/);
  for (let t = 3200; t <= 5000; t += 100) g.sampleLocal(t, 1e12 + t + 10_000);
  assert.ok(g.localProblem(5000));
  for (let t = 5100; t <= 5200; t += 100) g.sampleLocal(t, 1e12 + t + 10_000);
  assert.equal(g.localProblem(5200), undefined);
});

Deno.test("a stopped process (both clocks advance together) is not a clock problem", () => {
  const g = new ClockGuard();
  for (let t = 0; t <= 3000; t += 100) g.sampleLocal(t, 1e12 + t);
  g.sampleLocal(8000, 1e12 + 8000);
  assert.equal(g.localProblem(8000), undefined);
});

Deno.test("peer rates are bounded by round-trip times: jittery round trips are not a false alarm", () => {
  const g = new ClockGuard({ maxRateDrift: 0.05, windowMs: 2000 });
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let t = 0; t <= 6000; t += 100) {
    // Up to 90 ms out (answers stay in order, as over TCP), 150 ms back.
    const out = rnd() * 90;
    const back = rnd() * 150;
    g.samplePeer(
      2,
      t,
      t + out + back,
      5000 + t + out,
      1e12 + t + out,
      1e12 + t + out + back,
    );
    g.samplePeer(
      3,
      t,
      t + out + back,
      (t + out) * 1.3,
      1e12 + t + out,
      1e12 + t + out + back,
    );
  }
  const v = g.verdict(6000);
  assert.equal(v.peers[2]!.trusted, true, JSON.stringify(v.peers[2]));
  assert.equal(v.peers[3]!.trusted, false);
  assert.ok(Math.abs(v.peers[3]!.rate! - 1.3) < 0.1);
});

Deno.test("a peer whose wall clock is far off is not trusted; a restarted peer is measured afresh", () => {
  const g = new ClockGuard({ maxOffsetMs: 1000 });
  for (let t = 0; t <= 3000; t += 100) {
    g.samplePeer(2, t, t + 2, 90_000 + t, 1e12 + t + 5000, 1e12 + t + 2);
  }
  assert.match(g.verdict(3000).peers[2]!.reason!, /wall clock 4999 ms off/);
  // Its monotonic clock starts over (a new process).
  g.samplePeer(2, 3100, 3102, 10, 1e12 + 3101, 1e12 + 3102);
  assert.match(g.verdict(3100).peers[2]!.reason!, /not measured/);
});
