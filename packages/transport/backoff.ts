import type { RandomSource } from "./scheduler.ts";

/** How a client spaces its reconnection attempts. */
export interface BackoffPolicy {
  /** Delay before the second attempt, ms (default 50). */
  initialMs?: number;
  /** Ceiling of the delay, ms (default 5 000). */
  maxMs?: number;
  /** Growth per failed attempt (default 2). */
  multiplier?: number;
  /** Fraction of the delay that is random, 0..1 (default 0.5). */
  jitter?: number;
}

/**
 * Capped exponential backoff with jitter: attempt `n` (0-based) waits
 * `min(max, initial × multiplier^n)`, minus up to `jitter` of it at random,
 * so clients that lost the same server do not return in lockstep.
 *
 * @returns the delay in ms, in `[(1 - jitter) × base, base]`.
 */
export function backoffDelay(
  attempt: number,
  policy: BackoffPolicy = {},
  random: RandomSource = Math.random,
): number {
  const initial = policy.initialMs ?? 50;
  const max = policy.maxMs ?? 5_000;
  const multiplier = policy.multiplier ?? 2;
  const jitter = Math.min(1, Math.max(0, policy.jitter ?? 0.5));
  const base = Math.min(max, initial * Math.pow(multiplier, attempt));
  return base * (1 - jitter * random());
}
