import type { Context, Env, Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { authChallenge } from "./access_guard.ts";
import { codeForStatus, EdgeError } from "./edge_error.ts";

/** Options of {@link installErrorHandlers}. */
export interface ErrorHandlerOptions {
  /** Prefix of the stderr line logged for an unexpected error (the app's name). */
  name: string;
  /**
   * Turns an app's own error type into an {@link EdgeError} (return
   * undefined for errors it does not know: they become a generic 500).
   */
  map?: (e: unknown) => EdgeError | undefined;
  /** Where unexpected errors are logged (default console.error, i.e. stderr). */
  log?: (line: string) => void;
}

/**
 * Turns any thrown value into the JSON error answer. Unknown errors become
 * 500 `internal` with a generic message — their text never reaches the
 * caller (it may hold paths, internals or secrets); it is logged instead,
 * with the method and path only (no headers, no query: tokens live there).
 */
export function errorResponse(
  c: Context,
  e: unknown,
  options: ErrorHandlerOptions,
): Response {
  const err = toEdgeError(e, options);
  if (!err) {
    const what = e instanceof Error
      ? (e.stack ?? `${e.name}: ${e.message}`)
      : String(e);
    (options.log ?? console.error)(
      `${options.name}: unexpected error on ${c.req.method} ${
        new URL(c.req.url).pathname
      }: ${what}`,
    );
    return c.json(
      {
        error: {
          code: "internal",
          message: "internal error (logged by the server)",
        },
      },
      500,
    );
  }
  const res = c.json(err.toJSON(), err.status as 400);
  if (err.code === "unauthorized") {
    res.headers.set("www-authenticate", authChallenge(c.req.raw));
  }
  return res;
}

function toEdgeError(
  e: unknown,
  options: ErrorHandlerOptions,
): EdgeError | undefined {
  if (e instanceof EdgeError) return e;
  const mapped = options.map?.(e);
  if (mapped) return mapped;
  if (e instanceof HTTPException && e.status < 500) {
    return new EdgeError(
      codeForStatus(e.status),
      e.message || `HTTP ${e.status}`,
    );
  }
  return undefined;
}

/**
 * Installs the JSON 404 (`not_found`, naming the method and path) and the
 * error handler of {@link errorResponse} on an app.
 */
export function installErrorHandlers<E extends Env>(
  app: Hono<E>,
  options: ErrorHandlerOptions,
): void {
  app.notFound((c) =>
    c.json({
      error: {
        code: "not_found",
        message: `no route for ${c.req.method} ${new URL(c.req.url).pathname}`,
      },
    }, 404)
  );
  app.onError((e, c) => errorResponse(c, e, options));
}
