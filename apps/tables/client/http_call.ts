/**
 * One HTTP call of the tables client, its failure classified the way the
 * retry rules need: `unreachable` (the connection was refused: nothing was
 * sent), `timeout` / `lost` (sent, the answer did not come: the outcome is
 * unknown), or the server's own error code.
 *
 * Row writes (`textBody`) go as plain text with a Content-Length: the
 * servers read them in one piece, and neither side runs a stream per
 * request. Deno's fetch re-sends such a request once when a kept-alive
 * connection closes before the answer (denoland/deno#35610), so a server
 * that read a write and then died leaves the client a *refused* re-send:
 * "refused" alone no longer proves nothing was sent. {@link RefusalTracker}
 * tells the cases apart, erring towards "unknown". Other bodies, and every
 * body of a client given its own `Deno.HttpClient` (TLS), go as one-chunk
 * streams, which fetch never re-sends.
 *
 * A client given an `Http1Client` (`http1`) sends its row writes to
 * `http://` servers through it instead: it never re-sends, so a refused
 * connection is proof by itself, and it costs about a quarter of fetch's
 * CPU per write.
 */
import {
  EdgeError,
  failedToConnect,
  type Http1Client,
  onceBody,
} from "@strata/edge";
import { TablesClientError } from "./tables_client_error.ts";

/** A fetch failure as a client error. */
export function transportError(url: string, e: unknown): TablesClientError {
  const refused = e instanceof TypeError && failedToConnect(e);
  const timedOut = e instanceof DOMException &&
    (e.name === "TimeoutError" || e.name === "AbortError");
  return new TablesClientError(
    refused ? "unreachable" : timedOut ? "timeout" : "lost",
    `${url}: ${e instanceof Error ? e.message : e}`,
  );
}

/**
 * Whether a refused connection proves a request was never sent, per host
 * of one connection pool. Fetch re-sends only on a *reused* connection, and
 * a connection is reused only after an answer came on it and its body was
 * read (the tables servers answer everything with a JSON body, and `send`
 * counts the answer before anyone reads that body). So a refusal is
 * proof when the pool never had an answer from that host, or when the
 * host already refused a connection before this request started and has
 * not answered since (every connection left in the pool then leads to a
 * process that was gone before this request was written). Any other
 * refusal may be the re-send of a request the server read before dying.
 */
export class RefusalTracker {
  #seq = 0;
  readonly #hosts = new Map<
    string,
    { answers: number; refusedAt: number; answersAtRefusal: number }
  >();

  #host(origin: string) {
    let h = this.#hosts.get(origin);
    if (!h) {
      h = { answers: 0, refusedAt: 0, answersAtRefusal: 0 };
      this.#hosts.set(origin, h);
    }
    return h;
  }

  /** Call before sending; pass the result to {@link refused}. */
  start(): number {
    return ++this.#seq;
  }

  /** An answer (any status) came from `origin`. */
  answered(origin: string): void {
    this.#host(origin).answers++;
  }

  /** `origin` refused the connection of a request started at `started`: whether that proves it was not sent. */
  refused(origin: string, started: number): boolean {
    const h = this.#host(origin);
    const proof = h.answers === 0 ||
      (h.refusedAt !== 0 && h.refusedAt < started &&
        h.answers === h.answersAtRefusal);
    h.refusedAt = ++this.#seq;
    h.answersAtRefusal = h.answers;
    return proof;
  }
}

/**
 * The pool of bodied calls made without a caller's `Deno.HttpClient`: its
 * own, so that {@link tracker} sees every answer that could leave a
 * connection in it. Made at module load: a test's resource sanitizer
 * would count one made during the test as leaked.
 */
const bodyPool = Deno.createHttpClient({});
const tracker = new RefusalTracker();

/** `http://host:port` of a URL. */
function originOf(url: string): string {
  const slash = url.indexOf("/", url.indexOf("//") + 2);
  return slash < 0 ? url : url.slice(0, slash);
}

/** Options of one call. */
export interface CallOptions {
  method?: string;
  body?: unknown;
  headers: Record<string, string>;
  timeoutMs: number;
  client?: Deno.HttpClient;
  /**
   * Send the body as text through the watched pool (see the module doc):
   * for the hot row writes. Other calls send bodies as streams, so a dead
   * server's refusal always proves nothing was sent.
   */
  textBody?: boolean;
  /**
   * With `textBody`, no `client` and an `http://` URL: send through this
   * kept-alive HTTP/1.1 pool instead of fetch (see the module doc).
   */
  http1?: Http1Client;
}

/**
 * Sends one request; the response when it is 2xx.
 * @throws TablesClientError: transport failures as above; an error answer
 *   as its envelope's code (`not_serving`, `no_leader`, `bad_request`, ...).
 */
export async function send(url: string, o: CallOptions): Promise<Response> {
  let res: Response;
  const text = o.body === undefined ? undefined : JSON.stringify(o.body);
  const method = o.method ?? (text === undefined ? "GET" : "POST");
  // A body sent as a stream is never re-sent by fetch; a text body goes
  // through bodyPool, watched by tracker.
  const watched = o.textBody === true && text !== undefined &&
    o.client === undefined;
  const started = watched ? tracker.start() : 0;
  try {
    res = await fetch(url, {
      method,
      headers: text === undefined
        ? o.headers
        : { ...o.headers, "content-type": "application/json" },
      body: text === undefined ? undefined : watched ? text : onceBody(text),
      signal: AbortSignal.timeout(o.timeoutMs),
      ...(watched
        ? { client: bodyPool }
        : o.client
        ? { client: o.client }
        : {}),
    });
  } catch (e) {
    const err = transportError(url, e);
    if (
      watched && err.code === "unreachable" &&
      !tracker.refused(originOf(url), started)
    ) {
      throw new TablesClientError(
        "lost",
        `${err.message} (a re-send by fetch: the first copy may have been received)`,
      );
    }
    throw err;
  }
  if (watched) tracker.answered(originOf(url));
  if (res.ok) return res;
  let answer: string;
  try {
    answer = await res.text();
  } catch (e) {
    throw transportError(url, e);
  }
  throw answerError(res.status, answer);
}

/** The error a non-2xx answer carries, as a client error. */
function answerError(status: number, answer: string): TablesClientError {
  let err: Record<string, unknown> = {};
  try {
    err = (JSON.parse(answer) as { error?: Record<string, unknown> }).error ??
      {};
  } catch { /* not JSON */ }
  const { code, message, ...details } = err;
  return new TablesClientError(
    typeof code === "string" ? code : "http_error",
    typeof message === "string" ? message : `HTTP ${status}`,
    status,
    Object.keys(details).length ? details : undefined,
  );
}

const utf8 = new TextDecoder();

/**
 * One call through an {@link Http1Client}, its failures classified as
 * {@link send}'s: it never re-sends, so a connection it could not make
 * (`sent: false`) is `unreachable`, any later failure `lost` or `timeout`.
 */
async function sendHttp1(
  http1: Http1Client,
  url: string,
  o: CallOptions,
  text: string,
): Promise<Record<string, unknown>> {
  let res;
  try {
    res = await http1.request(url, {
      method: o.method ?? "POST",
      headers: { ...o.headers, "content-type": "application/json" },
      body: text,
      timeoutMs: o.timeoutMs,
    });
  } catch (e) {
    if (!(e instanceof EdgeError)) throw e;
    throw new TablesClientError(
      e.code === "timeout"
        ? "timeout"
        : e.details?.sent === false
        ? "unreachable"
        : "lost",
      `${url}: ${e.message}`,
    );
  }
  const answer = utf8.decode(res.body);
  if (res.status < 200 || res.status > 299) {
    throw answerError(res.status, answer);
  }
  try {
    return JSON.parse(answer);
  } catch (e) {
    throw new TablesClientError(
      "lost",
      `${url}: the answer is not JSON: ${e instanceof Error ? e.message : e}`,
    );
  }
}

/** {@link send}, then the JSON body. */
export async function sendJson(
  url: string,
  o: CallOptions,
): Promise<Record<string, unknown>> {
  if (
    o.http1 !== undefined && o.textBody === true && o.body !== undefined &&
    o.client === undefined && url.startsWith("http://")
  ) {
    return await sendHttp1(o.http1, url, o, JSON.stringify(o.body));
  }
  const res = await send(url, o);
  try {
    return await res.json();
  } catch (e) {
    throw transportError(url, e);
  }
}
