/**
 * The tables service's own error answers, besides the edge's generic ones:
 * `not_serving` — this server does not serve that row now. Status 409 when
 * the server is healthy but holds no tablet for the row (ask the master
 * where it lives), 503 when the server has lost its kv session and serves
 * nothing. Either way the request was not applied: a client may re-send
 * it to the right server.
 */
import type { Context, Hono } from "hono";
import {
  type EdgeError,
  type ErrorHandlerOptions,
  errorResponse,
} from "@strata/edge";

/** Codes of {@link TablesError}. */
export type TablesErrorCode = "not_serving";

/** A tables-specific error answer. */
export class TablesError extends Error {
  /** Machine-readable reason. */
  readonly code: TablesErrorCode;
  /** HTTP status. */
  readonly status: 409 | 503;
  /** Extra JSON fields. */
  readonly details?: Record<string, unknown>;

  /** @param status 409 wrong server, 503 fenced; @param message what to do. */
  constructor(
    code: TablesErrorCode,
    status: 409 | 503,
    message: string,
    details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = "TablesError";
    this.code = code;
    this.status = status;
    this.details = details;
  }
}

/** The not_serving answer of a server without a live session. */
export function fenced(why: string): TablesError {
  return new TablesError(
    "not_serving",
    503,
    `this tablet server serves nothing: ${why}; the master moves its tablets to a live server`,
  );
}

/**
 * The edge's error handlers plus {@link TablesError}, which the edge's
 * envelope cannot carry (its codes are fixed).
 */
export function installTablesErrorHandlers(
  app: Hono,
  options: ErrorHandlerOptions & {
    /** Turns an app error (e.g. a TabletError) into an answerable one. */
    translate?: (e: unknown) => TablesError | EdgeError | undefined;
  },
): void {
  app.notFound((c) =>
    c.json({
      error: {
        code: "not_found",
        message: `no route for ${c.req.method} ${new URL(c.req.url).pathname}`,
      },
    }, 404)
  );
  app.onError((thrown, c: Context) => {
    const e = options.translate?.(thrown) ?? thrown;
    if (e instanceof TablesError) {
      return c.json({
        error: { code: e.code, message: e.message, ...e.details },
      }, e.status);
    }
    return errorResponse(c, e, options);
  });
}
