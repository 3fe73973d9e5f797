import type { KvClient } from "@strata/kv";

/** Resolves after `ms`, or at once when `signal` aborts. */
export function abortableSleep(
  ms: number,
  signal?: AbortSignal,
): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener("abort", done);
  });
}

/**
 * Calls `kick` on every change kv reports under `prefix`, until `signal`
 * aborts. A failed watch (kv unreachable) starts again after 500 ms; the
 * caller's own periodic read covers what it missed meanwhile.
 */
export async function kickOnChanges(
  kv: KvClient,
  prefix: string,
  signal: AbortSignal,
  kick: () => void,
): Promise<void> {
  while (!signal.aborted) {
    try {
      for await (const _ of kv.watch(prefix, undefined, signal)) kick();
    } catch { /* kv unreachable: the caller's poll covers it */ }
    await abortableSleep(500, signal);
  }
}
