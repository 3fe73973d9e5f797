/**
 * Waits (polling every 20 ms) until `ok()` holds, measured on the monotonic
 * clock. @throws Error naming `what` after `ms`.
 */
export async function until(
  what: string,
  ok: () => boolean,
  ms = 15_000,
): Promise<void> {
  const end = performance.now() + ms;
  while (!ok()) {
    if (performance.now() > end) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
