/**
 * The test-only `kv:node` flag `--test-wall-step-ms N`: SIGUSR1 steps the
 * process's wall clock (`Date.now`, which the node's clock port and the
 * HTTP API read) N ms forward, SIGUSR2 N ms back, as an NTP step or a VM
 * resume would. "Time is a fault" tests step one node of a real cluster
 * with it (session_clock_test.ts); the monotonic clock is left alone.
 * Never set it in production.
 */
import { z } from "zod";

/** The flag's zod shape, to spread into a flags schema. */
export const WALL_STEP_FLAGS = {
  "test-wall-step-ms": z.coerce.number().int().min(1).max(31_536_000_000)
    .optional(),
};

/** The flag's --help lines. */
export const WALL_STEP_USAGE =
  `  --test-wall-step-ms N   tests only: SIGUSR1 steps this process's wall clock (Date.now)
                          N ms forward, SIGUSR2 N ms back (a simulated NTP step)`;

/**
 * Replaces `Date.now` with the real clock plus an offset that `step` moves
 * (as an NTP step or a VM resume would), until `restore`. The monotonic
 * clock is left alone.
 */
export function wallStepper(): {
  step(ms: number): number;
  restore(): void;
} {
  const real = Date.now;
  let offset = 0;
  Date.now = () => real() + offset;
  return {
    /** Moves the wall clock by `ms`; returns the offset now. */
    step(ms: number) {
      return offset += ms;
    },
    restore() {
      Date.now = real;
    },
  };
}

/**
 * A {@link wallStepper} that SIGUSR1 steps `stepMs` forward and SIGUSR2
 * back; each step is logged on stderr.
 * @returns a function that removes the listeners and restores `Date.now`.
 */
export function installWallStep(stepMs: number, label: string): () => void {
  const wall = wallStepper();
  const step = (by: number) => () => {
    const offset = wall.step(by);
    console.error(
      `${label}: wall clock stepped ${
        by > 0 ? "+" : ""
      }${by} ms (--test-wall-step-ms), offset now ${offset} ms`,
    );
  };
  const forward = step(stepMs);
  const back = step(-stepMs);
  Deno.addSignalListener("SIGUSR1", forward);
  Deno.addSignalListener("SIGUSR2", back);
  return () => {
    Deno.removeSignalListener("SIGUSR1", forward);
    Deno.removeSignalListener("SIGUSR2", back);
    wall.restore();
  };
}
