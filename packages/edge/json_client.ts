/**
 * Calling another node's JSON API: fetch with a timeout, a bearer token,
 * an optional private CA (for self-signed TLS), and the answer checked
 * against a zod schema; error envelopes come back as EdgeErrors.
 */
import type { z } from "zod";
import {
  codeForStatus,
  EdgeError,
  type EdgeErrorCode,
  ERROR_STATUS,
} from "./edge_error.ts";

/** Options of {@link callJson}. */
export interface CallOptions {
  /** HTTP method (default GET, or POST when a body is given). */
  method?: string;
  /** Request body, sent as `application/json`. */
  body?: unknown;
  /** Bearer token. */
  token?: string;
  /** Give up after this many ms (default 10 s). */
  timeoutMs?: number;
  /** Aborts the call. */
  signal?: AbortSignal;
  /** A client from {@link tlsClient} (trusting a private CA). */
  client?: Deno.HttpClient;
  /** Extra headers. */
  headers?: Record<string, string>;
}

const UNREACHABLE = Symbol("unreachable");

/** True when `e` says the server could not be reached at all (no answer). */
export function isUnreachable(e: unknown): boolean {
  return e instanceof EdgeError && e.code === "unavailable" &&
    e.cause === UNREACHABLE;
}

/** Headers carrying a bearer token (none without one). */
export function authHeaders(token: string | undefined): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {};
}

/**
 * A fetch client that trusts the PEM CA certificate(s) in `caFile` (e.g.
 * a self-signed server certificate) besides the system's.
 * @throws Error when the file cannot be read.
 */
export async function tlsClient(caFile: string): Promise<Deno.HttpClient> {
  return Deno.createHttpClient({ caCerts: [await Deno.readTextFile(caFile)] });
}

/**
 * Calls `url` and validates the JSON answer with `schema`.
 * @throws EdgeError: the server's own error (code and message from its
 *   envelope); `unavailable` when it cannot be reached (see
 *   {@link isUnreachable}); `timeout` after `timeoutMs`; `bad_gateway`
 *   when the answer is not JSON or does not match the schema.
 */
export async function callJson<S extends z.ZodType>(
  url: string,
  schema: S,
  options: CallOptions = {},
): Promise<z.output<S>> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = options.signal
    ? AbortSignal.any([options.signal, timeout])
    : timeout;
  let res: Response;
  try {
    res = await fetch(url, {
      method: options.method ?? (options.body === undefined ? "GET" : "POST"),
      headers: {
        ...(options.body === undefined
          ? {}
          : { "content-type": "application/json" }),
        ...authHeaders(options.token),
        ...options.headers,
      },
      body: options.body === undefined
        ? undefined
        : JSON.stringify(options.body),
      signal,
      ...(options.client ? { client: options.client } : {}),
    });
  } catch (e) {
    if (timeout.aborted) {
      throw new EdgeError(
        "timeout",
        `${url} did not answer within ${timeoutMs} ms`,
      );
    }
    throw new EdgeError(
      "unavailable",
      `cannot reach ${url}: ${e instanceof Error ? e.message : e}`,
      undefined,
      UNREACHABLE,
    );
  }
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    throw new EdgeError(
      "bad_gateway",
      `${url} answered ${res.status}, not JSON`,
    );
  }
  if (!res.ok) throw errorFromBody(res.status, body);
  const r = schema.safeParse(body);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new EdgeError(
      "bad_gateway",
      `${url} answered an unexpected body (${issue?.path.join(".") ?? ""}: ${
        issue?.message ?? "invalid"
      })`,
    );
  }
  return r.data;
}

/** The EdgeError an error answer stands for (its envelope's code when known). */
export function errorFromBody(status: number, body: unknown): EdgeError {
  const e = (body as { error?: { code?: unknown; message?: unknown } } | null)
    ?.error;
  const code = typeof e?.code === "string" && e.code in ERROR_STATUS
    ? e.code as EdgeErrorCode
    : codeForStatus(status);
  const message = typeof e?.message === "string" ? e.message : `HTTP ${status}`;
  const { code: _c, message: _m, ...details } = (e ?? {}) as Record<
    string,
    unknown
  >;
  return new EdgeError(
    code,
    message,
    Object.keys(details).length ? details : undefined,
  );
}
