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

/** Timers as the connection logic uses them. */
export interface Timers {
  /** Current time, ms. */
  now(): number;
  /** Calls `fn` after `ms` milliseconds. @returns a function that cancels it. */
  setTimer(ms: number, fn: () => void): () => void;
}

/** Wall-clock timers (`setTimeout`, `performance.now`). */
export const realTimers: Timers = {
  now: () => performance.now(),
  setTimer(ms, fn) {
    const id = setTimeout(fn, ms);
    return () => clearTimeout(id);
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
