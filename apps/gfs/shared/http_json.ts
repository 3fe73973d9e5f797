import type { Context } from "hono";
import {
  authHeaders,
  EdgeError,
  type Http1Client,
  readBytes,
} from "@strata/edge";
import type { z } from "zod";
import { GfsError, gfsErrorFromBody, isGfsError } from "./gfs_error.ts";

/** The request's media type, lower case without parameters ("" if none). */
function mediaType(c: Context): string {
  return (c.req.header("content-type") ?? "").split(";")[0]!.trim()
    .toLowerCase();
}

/** The error for a request body that could not be read to its end. */
function bodyCutShort(e: unknown): unknown {
  if (e instanceof GfsError || e instanceof EdgeError) return e;
  return new EdgeError(
    "bad_request",
    "the request body ended before it was complete (the client went away or sent less than it declared)",
  );
}

/** Form encodings: a byte endpoint would store the encoding, not the bytes. */
const FORM_TYPES = new Set([
  "application/x-www-form-urlencoded",
  "multipart/form-data",
]);

/**
 * Refuses a form-encoded body where raw bytes are expected.
 * @throws GfsError `unsupported_media_type`.
 */
export function refuseFormBody(c: Context): void {
  const type = mediaType(c);
  if (FORM_TYPES.has(type)) {
    throw new GfsError(
      "unsupported_media_type",
      `the body is the raw bytes (application/octet-stream), not ${type}`,
    );
  }
}

/**
 * The whole request body, at most `max` bytes, for endpoints that take a
 * small raw body (form encodings refused: they would store the encoding,
 * not the bytes).
 * @throws GfsError `unsupported_media_type`; EdgeError `too_large`,
 *   `bad_request` (cut short).
 */
export function readRawBytes(c: Context, max: number): Promise<Uint8Array> {
  refuseFormBody(c);
  return readBytes(c, max);
}

/**
 * The request body as a byte stream (null without one), for endpoints
 * that take raw bytes. Kept here rather than @strata/edge's `readBytes`
 * because uploads and chunk pushes must stay streamed (a 64 MiB chunk is
 * forwarded down the chain while it arrives, never buffered whole). A body cut short by the client fails the stream
 * with a `bad_request` GfsError instead of a transport error.
 * @throws GfsError `unsupported_media_type` for form encodings (curl -d/-F
 *   would store the encoding, not the bytes).
 */
export function requestBody(c: Context): ReadableStream<Uint8Array> | null {
  refuseFormBody(c);
  const body = c.req.raw.body;
  if (body === null) return null;
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(ctl) {
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await reader.read();
      } catch (e) {
        throw bodyCutShort(e);
      }
      if (r.done) ctl.close();
      else ctl.enqueue(r.value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

/** Options of {@link fetchJson}. */
export interface FetchJsonOptions {
  /** Request body, sent as JSON. */
  body?: unknown;
  /** HTTP method (default GET, or POST when a body is given). */
  method?: string;
  /** Abort after this many ms (default 30 s). */
  timeoutMs?: number;
  /** Aborts the call (and, in {@link MasterEndpoints.call}, its retries). */
  signal?: AbortSignal;
  /** Bearer token: a user token, or the cell's peer secret between its processes. */
  token?: string;
  /** A fetch client trusting the cell's TLS certificate (HTTPS with a private CA). */
  client?: Deno.HttpClient;
  /** Told the URL a follower redirected the call to (MasterEndpoints remembers the leader). */
  onRedirect?: (url: string) => void;
  /**
   * Make the call over this kept-alive HTTP/1.1 client instead of `fetch`
   * when the URL is plain `http://` and neither `client` nor `signal` is
   * given (see {@link fetchJson}).
   */
  http1?: Http1Client;
}

/** Method, content type and JSON body of a call with these options. */
export function jsonRequestInit(
  options: FetchJsonOptions,
): Pick<RequestInit, "method" | "headers" | "body"> {
  const auth = authHeaders(options.token);
  if (options.body === undefined) {
    return { method: options.method ?? "GET", headers: auth };
  }
  return {
    method: options.method ?? "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify(options.body),
  };
}

/**
 * `fetch` that follows a master's 307 to the leader itself: fetch drops
 * the Authorization header on a redirect to another origin (another
 * port), so the leader would answer 401. The body must be re-sendable
 * (a string or bytes, not a stream).
 */
async function fetchFollowingLeader(
  url: string,
  init: RequestInit & { client?: Deno.HttpClient },
  onRedirect?: (url: string) => void,
): Promise<Response> {
  for (let hops = 0;; hops++) {
    const res = await fetch(url, { ...init, redirect: "manual" });
    const location = res.headers.get("location");
    if (
      (res.status !== 307 && res.status !== 308) || location === null ||
      hops >= 5
    ) return res;
    await res.body?.cancel();
    url = new URL(location, url).href;
    onRedirect?.(url);
  }
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
  if (
    options.http1 !== undefined && options.client === undefined &&
    options.signal === undefined && url.startsWith("http://")
  ) return await http1Json(options.http1, url, schema, options);
  let res: Response;
  try {
    res = await fetchFollowingLeader(url, {
      ...jsonRequestInit(options),
      client: options.client,
      signal: options.signal
        ? AbortSignal.any([
          options.signal,
          AbortSignal.timeout(options.timeoutMs ?? 30_000),
        ])
        : AbortSignal.timeout(options.timeoutMs ?? 30_000),
    }, options.onRedirect);
  } catch (e) {
    throw new GfsError("unavailable", `cannot reach ${url}: ${String(e)}`, {
      cause: UNREACHABLE,
    });
  }
  return await parseResponse(res, schema, url);
}

const UNREACHABLE = Symbol("unreachable");
const utf8 = new TextDecoder();

/**
 * {@link fetchJson} over an {@link Http1Client}: the same request (method,
 * token, JSON body), the same 307/308 following to the leader (token kept,
 * at most 5 hops), the same answers and errors. It costs about a quarter of
 * `fetch`'s CPU per call (no Request/Response/Headers objects, no body
 * stream, no abort signal and timer per call), which counts for calls made
 * per write, such as a tablet server's commit log's `exists` check after
 * every block. Any failure to get an answer is `unavailable` and
 * unreachable (retried by {@link MasterEndpoints}), as a `fetch` that
 * throws is.
 */
async function http1Json<S extends z.ZodType>(
  http1: Http1Client,
  url: string,
  schema: S,
  options: FetchJsonOptions,
): Promise<z.infer<S>> {
  const init = jsonRequestInit(options);
  const headers = init.headers as Record<string, string>;
  const body = init.body as string | undefined;
  const method = init.method ?? "GET";
  const timeoutMs = options.timeoutMs ?? 30_000;
  for (let hops = 0;; hops++) {
    let res;
    try {
      res = await http1.request(url, {
        method,
        headers,
        ...(body !== undefined ? { body } : {}),
        timeoutMs,
      });
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw new GfsError("unavailable", `cannot reach ${url}: ${why}`, {
        cause: UNREACHABLE,
      });
    }
    const location = res.headers.get("location");
    if (
      (res.status === 307 || res.status === 308) && location !== undefined &&
      hops < 5
    ) {
      url = new URL(location, url).href;
      options.onRedirect?.(url);
      if (url.startsWith("http://")) continue;
      // Redirected off plain HTTP: fetch takes it from there.
      return await fetchJson(url, schema, { ...options, http1: undefined });
    }
    let answer: unknown;
    try {
      answer = JSON.parse(utf8.decode(res.body));
    } catch {
      throw new GfsError(
        "unavailable",
        `${url} answered ${res.status}, not JSON`,
      );
    }
    return checkAnswer(res.status, answer, schema, url);
  }
}

/** True when `e` says the server could not be reached at all (no answer). */
export function isUnreachable(e: unknown): boolean {
  return isGfsError(e, "unavailable") && e.cause === UNREACHABLE;
}

/**
 * The master group as a caller sees it: a list of master base URLs (one,
 * or every replica of a replicated master). Calls go to the master that
 * answered last; followers redirect to the leader (fetch follows the 307),
 * and when a master cannot be reached or knows no leader yet the call
 * moves on to the next one, for up to `failoverMs`.
 */
export class MasterEndpoints {
  readonly urls: readonly string[];
  readonly #failoverMs: number;
  readonly #token: string | undefined;
  readonly #client: Deno.HttpClient | undefined;
  /**
   * The kept-alive HTTP/1.1 client calls to `http://` masters go through
   * (undefined: `fetch`); its owner sets it back to undefined when it
   * closes it, so later calls still work.
   */
  http1: Http1Client | undefined;
  #current = 0;

  /**
   * @param urls base URLs, as an array or comma-separated.
   * @param failoverMs how long to keep trying other masters (default 20 s).
   * @param token bearer token sent with every call (a user token, or a
   *   chunkserver's peer secret).
   * @param client fetch client trusting the masters' TLS certificate.
   * @param http1 a kept-alive HTTP/1.1 client for calls to `http://`
   *   masters (see {@link fetchJson}); the caller closes it.
   */
  constructor(
    urls: string | readonly string[],
    failoverMs = 20_000,
    token?: string,
    client?: Deno.HttpClient,
    http1?: Http1Client,
  ) {
    const list = typeof urls === "string"
      ? urls.split(",").map((u) => u.trim()).filter(Boolean)
      : [...urls];
    if (list.length === 0) {
      throw new GfsError("bad_request", "no master URL given");
    }
    this.urls = list.map((u) => u.replace(/\/+$/, ""));
    this.#failoverMs = failoverMs;
    this.#token = token;
    this.#client = client;
    this.http1 = http1;
  }

  /** The master currently believed to serve. */
  get current(): string {
    return this.urls[this.#current]!;
  }

  /**
   * {@link fetchJson} against the serving master: `pathAndQuery` starts
   * with "/".
   * @throws GfsError from the master, or `unavailable` when no master
   *   served within the failover window.
   */
  async call<S extends z.ZodType>(
    pathAndQuery: string,
    schema: S,
    options: FetchJsonOptions = {},
  ): Promise<z.infer<S>> {
    const deadline = performance.now() + this.#failoverMs;
    for (let attempt = 0;; attempt++) {
      const base = this.current;
      try {
        return await fetchJson(`${base}${pathAndQuery}`, schema, {
          token: this.#token,
          client: this.#client,
          http1: this.http1,
          ...options,
          // Remember the leader a follower redirected to: the next call goes straight there.
          onRedirect: (to) => {
            const i = this.urls.findIndex((u) => to.startsWith(u + "/"));
            if (i >= 0 && this.current === base) this.#current = i;
          },
        });
      } catch (e) {
        const retryable = isUnreachable(e) || isGfsError(e, "not_leader");
        // Moved on before giving up too: a caller whose one attempt
        // outlasts the window (a heartbeat to a partitioned leader) must
        // not start its next call at the same master. Only if no other
        // call moved on meanwhile.
        if (retryable && this.current === base) {
          this.#current = (this.#current + 1) % this.urls.length;
        }
        if (
          !retryable || performance.now() > deadline || options.signal?.aborted
        ) {
          throw e;
        }
        // A full round without an answer: an election is on; wait a little.
        if ((attempt + 1) % this.urls.length === 0) {
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    }
  }
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
  return checkAnswer(res.status, body, schema, url);
}

/** A JSON answer's value, or the GfsError its status and body say. */
function checkAnswer<S extends z.ZodType>(
  status: number,
  body: unknown,
  schema: S,
  url: string,
): z.infer<S> {
  if (status < 200 || status > 299) throw gfsErrorFromBody(status, body);
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
