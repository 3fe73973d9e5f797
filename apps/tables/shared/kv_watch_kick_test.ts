import { ok } from "node:assert/strict";
import { abortableSleep } from "./kv_watch_kick.ts";

Deno.test("abortableSleep waits its time, and wakes at once when its signal aborts (then or already)", async () => {
  let t = performance.now();
  await abortableSleep(30);
  ok(performance.now() - t >= 25, "slept its time");
  const ac = new AbortController();
  t = performance.now();
  const slept = abortableSleep(10_000, ac.signal);
  setTimeout(() => ac.abort(), 20);
  await slept;
  ok(performance.now() - t < 5_000, "woke on abort");
  t = performance.now();
  await abortableSleep(10_000, ac.signal);
  ok(performance.now() - t < 5_000, "an aborted signal wakes at once");
});
