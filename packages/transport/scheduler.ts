/**
 * The clock and timer seams of the transport. Real connections use the
 * wall clock; the in-memory network and the simulator drive time
 * themselves. packages/sim can hand its scheduler and seeded random source
 * straight in: the shapes below are all the transport asks for.
 */

/** Runs callbacks at virtual (or real) times, in milliseconds. */
export interface Scheduler {
  /** Current time, ms. */
  now(): number;
  /** Runs `fn` once at time `atMs` (not earlier; ties in scheduling order). */
  schedule(atMs: number, fn: () => void): void;
}

/** Uniform random numbers in [0, 1), e.g. a seeded PRNG's `next`. */
export type RandomSource = () => number;

/**
 * Cancels a timer. `hold(false)` lets a pending timer stop keeping the
 * process alive and `hold(true)` makes it keep it alive again (Deno's
 * unref/ref); timers that never keep a process alive (simulated time) have
 * no `hold`.
 */
export type CancelTimer = (() => void) & {
  hold?: (keepAlive: boolean) => void;
};

/** Timers as the connection logic uses them. */
export interface Timers {
  /** Current time, ms. */
  now(): number;
  /** Calls `fn` after `ms` milliseconds. @returns a function that cancels it. */
  setTimer(ms: number, fn: () => void): CancelTimer;
}

/** Wall-clock timers (`setTimeout`, `performance.now`). */
export const realTimers: Timers = {
  now: () => performance.now(),
  setTimer(ms, fn) {
    const id = setTimeout(fn, ms);
    const cancel: CancelTimer = () => clearTimeout(id);
    cancel.hold = (keepAlive) =>
      keepAlive ? Deno.refTimer(id) : Deno.unrefTimer(id);
    return cancel;
  },
};

/** Timers driven by a {@link Scheduler} (cancelling makes the callback a no-op). */
export function schedulerTimers(scheduler: Scheduler): Timers {
  return {
    now: () => scheduler.now(),
    setTimer(ms, fn) {
      let live = true;
      scheduler.schedule(scheduler.now() + ms, () => {
        if (live) fn();
      });
      return () => {
        live = false;
      };
    },
  };
}
