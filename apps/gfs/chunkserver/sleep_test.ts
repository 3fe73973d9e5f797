import assert from "node:assert/strict";
import { sleepUnless } from "./sleep.ts";

/** Runs `f` counting the timers it starts. */
async function countingTimers(f: () => Promise<void>): Promise<number> {
  const original = globalThis.setTimeout;
  let n = 0;
  globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => {
    n++;
    return original(...args);
  }) as typeof setTimeout;
  try {
    await f();
  } finally {
    globalThis.setTimeout = original;
  }
  return n;
}

Deno.test("sleepUnless sleeps the whole time on one timer, not a poll of the signal", async () => {
  const signal = new AbortController().signal;
  const started = performance.now();
  const timers = await countingTimers(() => sleepUnless(400, signal));
  const slept = performance.now() - started;
  assert.ok(slept >= 399, `woke after ${slept.toFixed(1)} ms`);
  // One timer, or two when the first fired a little early.
  assert.ok(timers <= 2, `${timers} timers for one sleep`);
});

Deno.test("sleepUnless wakes at once when the signal aborts, and at once when it was aborted", async () => {
  const ac = new AbortController();
  const started = performance.now();
  setTimeout(() => ac.abort(), 50);
  await sleepUnless(60_000, ac.signal);
  const woke = performance.now() - started;
  // Generous for a loaded machine; without the abort it sleeps a minute.
  assert.ok(woke < 5_000, `woke after ${woke.toFixed(0)} ms`);
  const again = performance.now();
  await sleepUnless(60_000, ac.signal);
  assert.ok(performance.now() - again < 1_000);
});
