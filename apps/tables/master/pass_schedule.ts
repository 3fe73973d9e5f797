/**
 * When the active master runs a full reconcile pass (pure). Every
 * `reconcileMs` it asks {@link needsFullPass}: a full pass reads the whole
 * state from kv and every live server's report, then sends what differs.
 * When kv has not changed under `tables/` (its watch saw nothing), the
 * last pass found nothing to do and nothing failed, the tick is skipped:
 * the same reads would give the same answers. A full pass still runs every
 * {@link fullPassPeriod} as a safety net (and to sample the servers' load
 * for splits, merges and load moves).
 */
import type { LoadPolicy } from "./load_plan.ts";

/** What the master knows at a tick. */
export interface PassState {
  /**
   * Something may have changed since the last full pass began: a watch
   * event under `tables/`, a kick (an admin call, a split), the watch
   * (re)started.
   */
  changed: boolean;
  /** The last full pass sent no order, wrote nothing and nothing failed. */
  quiet: boolean;
  /** The watch on `tables/` is running, without a gap since a known revision. */
  watching: boolean;
  /** Milliseconds since the last full pass began (Infinity: none yet). */
  sinceFullMs: number;
}

/** Whether this tick runs a full pass (else it is skipped). */
export function needsFullPass(s: PassState, fullPassMs: number): boolean {
  return s.changed || !s.quiet || !s.watching || s.sinceFullMs >= fullPassMs;
}

/** Longest period between full passes, unless the load policy needs less. */
export const FULL_PASS_MS = 5000;

/**
 * The safety-net period: {@link FULL_PASS_MS}, shortened so that a tablet
 * hot (or cold) for `splitAfterMs` (`mergeAfterMs`) is sampled at least
 * three times in that span; never below `reconcileMs`.
 */
export function fullPassPeriod(
  reconcileMs: number,
  policy: Pick<
    LoadPolicy,
    "splitOps" | "splitAfterMs" | "mergeBytes" | "mergeAfterMs"
  >,
): number {
  let ms = FULL_PASS_MS;
  if (policy.splitOps > 0) ms = Math.min(ms, policy.splitAfterMs / 3);
  if (policy.mergeBytes > 0) ms = Math.min(ms, policy.mergeAfterMs / 3);
  return Math.max(reconcileMs, Math.round(ms));
}
