import assert from "node:assert/strict";
import fc from "fast-check";
import { BlockGather, type BlockGatherOptions } from "./block_gather.ts";

Deno.test("block gather: a log with few writers never waits; a busy one waits for as many writes as its last round counted (the block's and those queued during it), at most that block's time and the cap; not after an idle spell longer than that block, nor when the queue fills a block; a log is lone while its last round had one writer, idle spells or not", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 500 }),
      fc.integer({ min: 0, max: 200 }),
      fc.integer({ min: 0, max: 100 }),
      fc.integer({ min: 0, max: 800 }),
      fc.option(fc.integer({ min: 0, max: 200 })),
      fc.boolean(),
      (writes, during, ms, more, idle, full) => {
        const g = new BlockGather({ busyWrites: 16, maxWaitMs: 10 });
        assert.equal(g.plan(during), undefined, "no block done yet");
        assert.equal(g.lone, true, "no round yet");
        g.blockDone(writes, ms, during);
        if (idle !== null) {
          g.idle(1000);
          assert.equal(g.woke(1000 + idle), idle > ms, "an idle spell");
        }
        // What queued during the block is still queued, and more may come.
        const queued = during + more;
        const plan = g.plan(queued, full);
        const round = writes + during;
        const stale = idle !== null && idle > ms;
        assert.equal(g.busy, round >= 16 && !stale);
        // The turn before a block (ServerLog): an idle spell does not
        // make a log of several writers lone.
        assert.equal(g.lone, round <= 1);
        if (round < 16 || queued >= round || ms === 0 || stale || full) {
          assert.equal(plan, undefined);
        } else {
          assert.deepEqual(plan, { writes: round, waitMs: Math.min(10, ms) });
        }
      },
    ),
  );
});

/**
 * A log with `writers` closed-loop writers, one block in flight at a time
 * (each taking `blockMs`), driven by {@link BlockGather}: every writer a
 * block acknowledges sends its next write `back[i]` ms later (its answer,
 * its client). It starts split in two cohorts, as a busy log without a
 * gather rule settles: the first `first` writers in a block, the others
 * arriving while it is in flight. Returns the writes each block carried.
 */
function simulate(
  opts: BlockGatherOptions,
  writers: number,
  first: number,
  blockMs: number,
  back: (round: number, writer: number) => number,
  blocks: number,
): number[] {
  const g = new BlockGather(opts);
  // When each writer's next write arrives (ms).
  const at = Array.from(
    { length: writers },
    (_, w) => (w < first ? 0 : blockMs / 2),
  );
  const sizes: number[] = [];
  let now = 0;
  for (let b = 0; b < blocks; b++) {
    const queuedAt = (t: number) => at.filter((a) => a <= t).length;
    // Writes that came while the last block was in flight go in at once.
    const plan = b === 0 ? undefined : g.plan(queuedAt(now));
    let start = now;
    if (plan !== undefined) {
      const times = [...at].sort((x, y) => x - y);
      const nth = times[plan.writes - 1] ?? Infinity;
      start = Math.max(now, Math.min(nth, now + plan.waitMs));
    }
    const carried = at.flatMap((a, w) => (a <= start ? [w] : []));
    assert.ok(carried.length > 0, "a block carries something");
    now = start + blockMs;
    sizes.push(carried.length);
    for (const w of carried) at[w] = now + back(b, w);
    g.blockDone(carried.length, blockMs, queuedAt(now));
  }
  return sizes;
}

Deno.test("block gather model: writers split in two cohorts come together in one block as soon as they all come back within a block's time, and stay together", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 16, max: 120 }),
      fc.double({ min: 0.2, max: 0.8, noNaN: true }),
      fc.integer({ min: 2, max: 30 }),
      fc.integer({ min: 1, max: 1 << 30 }),
      (writers, split, blockMs, seed) => {
        const opts = { busyWrites: 16, maxWaitMs: 10 };
        const waitMs = Math.min(10, blockMs);
        // Every writer's return, drawn per round from the seed, is shorter
        // than the longest wait, so the count, not the clock, decides.
        const back = (round: number, w: number) =>
          ((seed ^ (round * 7919 + w * 104729)) >>> 0) % 1000 / 1000 *
          waitMs * 0.99;
        const first = Math.max(
          1,
          Math.min(writers - 1, Math.round(writers * split)),
        );
        const sizes = simulate(opts, writers, first, blockMs, back, 8);
        // Block 0 carries the first cohort; block 1 the others (queued
        // during block 0) and the first cohort back; then everyone.
        assert.deepEqual(sizes.slice(1), Array(7).fill(writers), `${sizes}`);
      },
    ),
  );
});

Deno.test("block gather model: a writer that stops costs its peers one wait of at most a block's time, then is no longer waited for", () => {
  const writers = 40;
  const blockMs = 4;
  // Writer 0 never comes back after the first block.
  const back = (_: number, w: number) => (w === 0 ? 1e9 : 1);
  const sizes = simulate(
    { busyWrites: 16, maxWaitMs: 10 },
    writers,
    writers,
    blockMs,
    back,
    5,
  );
  assert.deepEqual(sizes, [40, 39, 39, 39, 39]);
});

Deno.test("block gather defaults: a log's ~5 writers at 16 clients are not gathered, a round of 16 is", () => {
  const g = new BlockGather();
  g.blockDone(5, 4, 0);
  assert.equal(g.busy, false);
  assert.equal(g.lone, false);
  assert.equal(g.plan(1), undefined);
  g.blockDone(16, 4, 0);
  assert.equal(g.busy, true);
  assert.deepEqual(g.plan(1), { writes: 16, waitMs: 4 });
});
