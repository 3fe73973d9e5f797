import assert from "node:assert/strict";
import fc from "fast-check";
import { BUCKETS, TabletClock } from "./tablet_clock.ts";

function clockAt(start: number, floor = 0) {
  const wall = { now: start };
  return { wall, clock: new TabletClock(() => wall.now, floor) };
}

Deno.test("rows written in one millisecond share the wall clock's timestamp; a row's own writes rise", () => {
  const { clock } = clockAt(5_000);
  // 3,000 rows in one millisecond: the old per-tablet rule stamped them
  // 5,000 … 7,999, two seconds ahead of the wall clock.
  for (let row = 0; row < 3_000; row++) {
    assert.equal(clock.next(row), 5_000);
  }
  assert.equal(clock.now(), 5_000);
  assert.equal(clock.next(7), 5_001);
  assert.equal(clock.next(7), 5_002);
  // A hot row drags the tablet: nothing later goes below what it was given.
  assert.equal(clock.next(8), 5_002);
  assert.equal(clock.now(), 5_002);
  // Two rows in one slot are told apart as one row's writes would be.
  assert.equal(clock.next(9 + BUCKETS), 5_002);
  assert.equal(clock.next(9), 5_003);
});

Deno.test("the clock never goes back: a wall clock set back, a restart's floor, observe, a write without a row", () => {
  const { wall, clock } = clockAt(10_000, 20_000);
  assert.equal(clock.next(1), 20_001, "above the floor from before a restart");
  assert.equal(clock.next(2), 20_001);
  wall.now = 30_000;
  assert.equal(clock.next(1), 30_000);
  wall.now = 25_000;
  assert.equal(clock.next(3), 30_000, "the wall clock went back");
  clock.observe(40_000);
  assert.equal(clock.next(4), 40_001, "above an observed timestamp");
  assert.equal(clock.nextAfter(0), 40_001);
  assert.equal(clock.nextAfter(40_001), 40_002);
  const all = clock.next();
  assert.equal(all, 40_003);
  assert.equal(clock.next(5), 40_004, "above a write without a row");
  assert.equal(clock.last, 40_004);
});

Deno.test("timestamps never fall, rise per row, stay above the floor, and leave the wall clock only when a row, the floor or an observed time asks (fast-check)", () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant("write" as const), row: fc.nat(40) }),
    fc.record({
      kind: fc.constant("tick" as const),
      ms: fc.integer({ min: -50, max: 3 }),
    }),
    fc.record({
      kind: fc.constant("observe" as const),
      ahead: fc.integer({ min: -5, max: 5 }),
    }),
    fc.record({ kind: fc.constant("all" as const) }),
  );
  fc.assert(
    fc.property(
      fc.nat(1_000),
      fc.array(op, { maxLength: 300 }),
      (floor, ops) => {
        const { wall, clock } = clockAt(500, floor);
        let last = floor;
        let strictAbove = floor;
        const rowLast = new Map<number, number>();
        for (const o of ops) {
          if (o.kind === "tick") {
            wall.now += o.ms;
          } else if (o.kind === "observe") {
            const t = clock.last + o.ahead;
            clock.observe(t);
            strictAbove = Math.max(strictAbove, t);
            last = Math.max(last, t);
          } else if (o.kind === "all") {
            const t = clock.next();
            assert.equal(t, Math.max(wall.now, last + 1));
            last = strictAbove = t;
          } else {
            const prev = rowLast.get(o.row) ?? 0;
            const t = clock.next(o.row);
            assert.ok(t >= last, "never below a timestamp given before");
            assert.ok(t > strictAbove, "above the floor and observed times");
            assert.ok(t > prev, "above the row's own last timestamp");
            if (prev < wall.now && strictAbove < wall.now) {
              // Nothing asks for more: the wall clock, or the last
              // timestamp given when the wall clock went back.
              assert.equal(t, Math.max(wall.now, last));
            }
            rowLast.set(o.row, t);
            last = Math.max(last, t);
          }
          assert.equal(clock.last, last);
        }
      },
    ),
  );
});
