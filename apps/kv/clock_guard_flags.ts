/**
 * The `kv:node` flags that set the clock guard's bounds
 * (`ReplicatedNodeConfig.clockGuard`): their zod shape, their --help text,
 * and the translation to the guard's options. Unset flags keep the guard's
 * defaults.
 */
import { z } from "zod";
import type { ClockGuardOptions } from "@strata/raft";

/** The flags' zod shape, to spread into a flags schema. */
export const CLOCK_GUARD_FLAGS = {
  "clock-max-drift": z.coerce.number().gt(0).lt(1).optional(),
  "clock-max-jump-ms": z.coerce.number().int().min(1).max(600_000).optional(),
  "clock-max-offset-ms": z.coerce.number().int().min(1).max(3_600_000)
    .optional(),
  "clock-window-ms": z.coerce.number().int().min(100).max(600_000).optional(),
  "no-clock-guard": z.boolean().default(false),
};

/** The flags' --help lines. */
export const CLOCK_GUARD_USAGE =
  `  --clock-max-drift R     clock guard: largest |rate - 1| between this node's monotonic
                          and wall clocks, and between the leader's and a follower's
                          monotonic clocks (default 0.05); beyond it, no lease reads
  --clock-max-jump-ms N   largest jump of (wall - monotonic) between two samples (default 500)
  --clock-max-offset-ms N largest wall-clock offset to a peer (default 1000)
  --clock-window-ms N     span over which rates are measured; a peer counts toward the
                          lease only once measured over it, and a jump keeps this node
                          suspect this long (default 2000)
  --no-clock-guard        trust the clocks unchecked (lease reads then rely on the clock
                          assumptions alone)`;

const flagsObject = z.object(CLOCK_GUARD_FLAGS);
/** The parsed flags. */
export type ClockGuardFlags = z.output<typeof flagsObject>;

/**
 * The guard's options from parsed flags: false with --no-clock-guard
 * (refused together with a bound, which would then mean nothing).
 * @throws Error naming the conflicting flags.
 */
export function clockGuardFromFlags(
  f: ClockGuardFlags,
): ClockGuardOptions | false {
  const bounds: ClockGuardOptions = {
    ...(f["clock-max-drift"] !== undefined
      ? { maxRateDrift: f["clock-max-drift"] }
      : {}),
    ...(f["clock-max-jump-ms"] !== undefined
      ? { maxJumpMs: f["clock-max-jump-ms"] }
      : {}),
    ...(f["clock-max-offset-ms"] !== undefined
      ? { maxOffsetMs: f["clock-max-offset-ms"] }
      : {}),
    ...(f["clock-window-ms"] !== undefined
      ? { windowMs: f["clock-window-ms"] }
      : {}),
  };
  if (f["no-clock-guard"]) {
    if (Object.keys(bounds).length > 0) {
      throw new Error(
        "--no-clock-guard turns the guard off: drop the --clock-* bounds, or drop --no-clock-guard",
      );
    }
    return false;
  }
  return bounds;
}
