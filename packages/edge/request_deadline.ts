/**
 * Per-request deadlines: every request gets an AbortSignal that fires when
 * the client goes away or its time is up, and a deadline that passes
 * becomes a clear 504 `timeout` instead of a hang.
 */
import type { Context } from "hono";
import { EdgeError } from "./edge_error.ts";

/** Default deadline of a request, ms. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 5000;

/** A signal that aborts when the client disconnects or after `ms`. */
export function requestDeadline(
  c: Context,
  ms = DEFAULT_REQUEST_TIMEOUT_MS,
): AbortSignal {
  return AbortSignal.any([c.req.raw.signal, AbortSignal.timeout(ms)]);
}

/**
 * Turns an abort/timeout thrown while waiting into EdgeError `timeout`
 * (504), naming what was waited for; other errors pass through.
 */
export function deadlineError(e: unknown, waitingFor = "the answer"): unknown {
  if (
    e instanceof DOMException &&
    (e.name === "TimeoutError" || e.name === "AbortError")
  ) {
    return new EdgeError(
      "timeout",
      `the request deadline passed while waiting for ${waitingFor}`,
    );
  }
  return e;
}

/**
 * Runs `work` with the request's deadline signal, turning a passed
 * deadline into a 504 `timeout`.
 * @throws EdgeError `timeout`, or whatever `work` throws.
 */
export async function withDeadline<T>(
  c: Context,
  ms: number,
  work: (signal: AbortSignal) => Promise<T>,
  waitingFor?: string,
): Promise<T> {
  try {
    return await work(requestDeadline(c, ms));
  } catch (e) {
    throw deadlineError(e, waitingFor);
  }
}
