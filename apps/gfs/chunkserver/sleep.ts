/**
 * Sleeps `ms` (monotonic clock), waking at once when `signal` is aborted,
 * so a background loop ends soon after close. One timer per sleep, not a
 * poll of the signal: an idle chunkserver's heartbeat and scrubber loops
 * used to wake every 50 ms each.
 */
export async function sleepUnless(
  ms: number,
  signal: AbortSignal,
): Promise<void> {
  const end = performance.now() + ms;
  // A timer may fire a little early: sleep again for what is left.
  for (let left = ms; !signal.aborted && left > 0;) {
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, left);
      signal.addEventListener("abort", done, { once: true });
    });
    left = end - performance.now();
  }
}
