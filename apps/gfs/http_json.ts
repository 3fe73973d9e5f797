import type { Context } from "hono";
import { isStorageError } from "@strata/storage";
import { z } from "zod";
import { GfsError, gfsErrorFromBody } from "./gfs_error.ts";

/**
 * Turns any thrown value into the JSON error response every endpoint
 * uses: GfsError keeps its code and status, zod errors are 400, storage
 * and unknown errors are 500 with a message and never a stack trace.
 */
export function errorResponse(c: Context, e: unknown): Response {
  let err: GfsError;
  if (e instanceof GfsError) err = e;
  else if (e instanceof z.ZodError) {
    err = new GfsError("bad_request", z.prettifyError(e));
  } else if (isStorageError(e)) {
    err = new GfsError(
      e.code === "corrupt" ? "corrupt" : "internal",
      `storage: ${e.message}`,
    );
  } else {
    err = new GfsError(
      "internal",
      e instanceof Error ? e.message : "unexpected failure",
    );
  }
  return c.json(err.toJSON(), err.status as 400);
}

/**
 * Reads and validates a JSON request body.
 * @throws GfsError `bad_request` when it is not JSON or not valid.
 */
export async function readJson<S extends z.ZodType>(
  c: Context,
  schema: S,
): Promise<z.infer<S>> {
  let raw: unknown;
  try {
    raw = await c.req.json();
  } catch {
    throw new GfsError("bad_request", "the body must be JSON");
  }
  const r = schema.safeParse(raw);
  if (!r.success) {
    throw new GfsError("bad_request", z.prettifyError(r.error));
  }
  return r.data;
}

/**
 * Validates query parameters against a schema.
 * @throws GfsError `bad_request`.
 */
export function readQuery<S extends z.ZodType>(
  c: Context,
  schema: S,
): z.infer<S> {
  const r = schema.safeParse(c.req.query());
  if (!r.success) {
    throw new GfsError("bad_request", z.prettifyError(r.error));
  }
  return r.data;
}

/** Options of {@link fetchJson}. */
export interface FetchJsonOptions {
  /** Request body, sent as JSON. */
  body?: unknown;
  /** HTTP method (default GET, or POST when a body is given). */
  method?: string;
  /** Abort after this many ms (default 30 s). */
  timeoutMs?: number;
}

/**
 * Calls a JSON endpoint and validates the answer.
 * @throws GfsError from the error body, or `unavailable` when the server
 *   cannot be reached or answers garbage.
 */
export async function fetchJson<S extends z.ZodType>(
  url: string,
  schema: S,
  options: FetchJsonOptions = {},
): Promise<z.infer<S>> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: options.method ?? (options.body === undefined ? "GET" : "POST"),
      headers: options.body === undefined
        ? undefined
        : { "content-type": "application/json" },
      body: options.body === undefined
        ? undefined
        : JSON.stringify(options.body),
      signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
    });
  } catch (e) {
    throw new GfsError("unavailable", `cannot reach ${url}: ${String(e)}`);
  }
  return await parseResponse(res, schema, url);
}

/**
 * Validates a JSON response, turning error bodies into GfsErrors.
 * @throws GfsError.
 */
export async function parseResponse<S extends z.ZodType>(
  res: Response,
  schema: S,
  url: string,
): Promise<z.infer<S>> {
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    throw new GfsError(
      "unavailable",
      `${url} answered ${res.status}, not JSON`,
    );
  }
  if (!res.ok) throw gfsErrorFromBody(res.status, body);
  const r = schema.safeParse(body);
  if (!r.success) {
    throw new GfsError(
      "unavailable",
      `${url} answered an unexpected body: ${r.error.message}`,
    );
  }
  return r.data;
}

/** Throws the GfsError of a failed non-JSON-expecting response. */
export async function throwIfFailed(res: Response, url: string): Promise<void> {
  if (res.ok) return;
  let body: unknown = null;
  try {
    body = await res.json();
  } catch {
    // not JSON: status alone
  }
  const e = gfsErrorFromBody(res.status, body);
  e.message = `${url}: ${e.message}`;
  throw e;
}

/** Prometheus text line helper: `name{labels} value`. */
export function promLine(
  name: string,
  value: number,
  labels: Record<string, string> = {},
): string {
  const l = Object.entries(labels).map(([k, v]) =>
    `${k}="${v.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`
  ).join(",");
  return `${name}${l ? `{${l}}` : ""} ${value}`;
}
