/**
 * Drives a {@link Scheduler} under async code: after each simulated event
 * every promise continuation it started runs before the next event, so
 * `ReplicatedNode`'s async Ready loop (awaiting its storage port, then
 * sending, then applying) behaves in virtual time as it does in production,
 * and the same seed gives the same run.
 */
import { setImmediate } from "node:timers";
import type { Scheduler } from "./scheduler.ts";

/** Lets every pending promise continuation run (one macrotask turn). */
export const drain = (): Promise<void> =>
  new Promise<void>((r) => setImmediate(r));

/**
 * Executes events in order, draining continuations after each, until
 * `stop()` holds, the next event is due after `endMs`, or none is left.
 * An exception thrown by an event propagates.
 * @returns whether `stop()` held.
 */
export async function runEvents(
  sched: Scheduler,
  endMs: number,
  stop: () => boolean,
): Promise<boolean> {
  await drain();
  while (!stop()) {
    const next = sched.nextAt;
    if (next === undefined) {
      // Nothing scheduled yet: a continuation may still schedule something.
      await drain();
      if (sched.pending === 0) return stop();
      continue;
    }
    if (next > endMs) return false;
    sched.step();
    await drain();
  }
  return true;
}
