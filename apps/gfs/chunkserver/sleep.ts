/**
 * Sleeps up to `ms` (monotonic clock), waking early (checked every 50 ms)
 * once `signal` is aborted, so a background loop ends soon after close.
 */
export async function sleepUnless(
  ms: number,
  signal: AbortSignal,
): Promise<void> {
  const end = performance.now() + ms;
  while (!signal.aborted && performance.now() < end) {
    await new Promise((r) =>
      setTimeout(r, Math.max(0, Math.min(50, end - performance.now())))
    );
  }
}
