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
  /**
   * The sweep of unused stores and dead logs is due (`--sweep-ms` since
   * the last one began, none running): it starts from a full pass's state,
   * so a quiet cell must not put it off to the safety net.
   */
  sweepDue: boolean;
}

/** Whether this tick runs a full pass (else it is skipped). */
export function needsFullPass(s: PassState, fullPassMs: number): boolean {
  return s.changed || !s.quiet || !s.watching || s.sweepDue ||
    s.sinceFullMs >= fullPassMs;
}

/** Longest period between full passes, unless the load policy needs less. */
export const FULL_PASS_MS = 5000;

/**
 * Longest period between full passes when tablets split by size: a
 * tablet's size is known only from its server's report, which a full pass
 * reads, and a tablet under a write load must not grow far past the limit.
 */
export const SIZE_CHECK_MS = 1000;

/**
 * The safety-net period: {@link FULL_PASS_MS}, shortened so that a tablet
 * hot (or cold) for `splitAfterMs` (`mergeAfterMs`) is sampled at least
 * three times in that span, and to {@link SIZE_CHECK_MS} when `splitBytes`
 * splits by size; never below `reconcileMs`.
 */
export function fullPassPeriod(
  reconcileMs: number,
  policy: Pick<
    LoadPolicy,
    "splitOps" | "splitAfterMs" | "mergeBytes" | "mergeAfterMs"
  >,
  splitBytes = 0,
): number {
  let ms = FULL_PASS_MS;
  if (splitBytes > 0) ms = Math.min(ms, SIZE_CHECK_MS);
  if (policy.splitOps > 0) ms = Math.min(ms, policy.splitAfterMs / 3);
  if (policy.mergeBytes > 0) ms = Math.min(ms, policy.mergeAfterMs / 3);
  return Math.max(reconcileMs, Math.round(ms));
}
