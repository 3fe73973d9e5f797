/**
 * A small HTTP/1.1 client over plain TCP with kept-alive connections, for
 * clients whose calls are many and small (a load generator's puts): it
 * costs about a quarter of `fetch`'s CPU per call (one socket write and
 * one read; no Request/Response/Headers objects, no stream, no abort
 * signal).
 *
 * It **never re-sends** a request, so its failures say what a retrying
 * client needs: `EdgeError("unavailable", …, { sent: false })` when the
 * connection could not be made (nothing was sent), `{ sent: true }` once
 * any byte may have gone (the outcome is unknown), `EdgeError("timeout",
 * …, { sent: true })` when no answer came in time. An idle connection
 * keeps one read pending, so a server that closed it is noticed before the
 * connection is used again.
 *
 * Plain `http://` only (TLS and custom `Deno.HttpClient`s stay on
 * `fetch`). The caller closes it ({@link Http1Client.close}); its sockets
 * are unref'd, so they never keep a finished program alive. Deadlines are
 * checked by one timer every 100 ms while requests are out (a timer per
 * request cost ~7% of the client's CPU), so a timeout fires up to 100 ms
 * late.
 */
import { EdgeError } from "./edge_error.ts";

/** An answer: status, headers (names lower-case), the whole body. */
export interface Http1Response {
  status: number;
  headers: Map<string, string>;
  body: Uint8Array;
}

/** One request. */
export interface Http1Request {
  method: string;
  /** Header names and values (no CR or LF). `host` and `content-length` are added. */
  headers: Record<string, string>;
  /** Sent with a Content-Length (strings as UTF-8). */
  body?: string | Uint8Array;
  /** No answer by then: the connection is closed, `timeout`. */
  timeoutMs: number;
}

/** Options of an {@link Http1Client}. */
export interface Http1ClientOptions {
  /** Idle connections kept per origin at most (default 1,024). */
  maxIdlePerOrigin?: number;
  /** Largest answer accepted, bytes (default 64 MiB). */
  maxResponseBytes?: number;
}

const encoder = new TextEncoder();
const latin1 = new TextDecoder("latin1");
const CRLFCRLF = [13, 10, 13, 10];
/** How often deadlines are checked, ms. */
const SWEEP_MS = 100;

/** One kept-alive connection and what it has read but not used. */
class Conn {
  buf = new Uint8Array(16 * 1024);
  /** Unused bytes are `buf[start, end)`. */
  start = 0;
  end = 0;
  /** The read started when the connection went idle (or the last one). */
  pending: Promise<number | null> | null = null;
  /** The server closed it, or it broke: never used again. */
  dead = false;
  /** In the pool, no request on it. */
  idle = false;
  /** `performance.now()` past which its request times out (busy only). */
  deadline = 0;
  /** The request on it timed out (the sweep closed it). */
  timedOut = false;
  constructor(readonly tcp: Deno.TcpConn) {}

  /** Starts a read into the free space (grown as needed). */
  read(): Promise<number | null> {
    if (this.start === this.end) this.start = this.end = 0;
    if (this.end === this.buf.length) {
      const used = this.end - this.start;
      const next = new Uint8Array(
        used * 2 > this.buf.length ? this.buf.length * 2 : this.buf.length,
      );
      next.set(this.buf.subarray(this.start, this.end));
      this.buf = next;
      this.start = 0;
      this.end = used;
    }
    return this.tcp.read(this.buf.subarray(this.end));
  }

  close(): void {
    this.dead = true;
    try {
      this.tcp.close();
    } catch {
      // Closed already (by a timeout or the runtime): nothing to release.
    }
  }
}

/**
 * A pool of kept-alive HTTP/1.1 connections per origin; each connection
 * carries one request at a time (no pipelining).
 */
export class Http1Client {
  readonly #idle = new Map<string, Conn[]>();
  readonly #busy = new Set<Conn>();
  readonly #maxIdle: number;
  readonly #maxBytes: number;
  #closed = false;
  #sweep: ReturnType<typeof setInterval> | undefined;

  /** @param options pool and answer limits. */
  constructor(options: Http1ClientOptions = {}) {
    this.#maxIdle = options.maxIdlePerOrigin ?? 1024;
    this.#maxBytes = options.maxResponseBytes ?? 64 * 1024 * 1024;
  }

  /**
   * Sends one request to an `http://` URL and reads the whole answer.
   * @throws EdgeError `unavailable` with `details.sent` false (could not
   *   connect: nothing sent) or true (the connection failed after that:
   *   outcome unknown), `timeout` (sent, no answer in time), `bad_request`
   *   (not an http URL, a header with CR/LF).
   */
  async request(url: string, r: Http1Request): Promise<Http1Response> {
    if (this.#closed) {
      throw new EdgeError("unavailable", "the client is closed", {
        sent: false,
      });
    }
    const { origin, host, port, path } = splitUrl(url);
    // Host names the port too (RFC 9112, 3.2): the origin's authority.
    const message = encodeRequest(r, origin.slice(7), path);
    const conn = await this.#take(origin, host, port, r.timeoutMs);
    conn.deadline = performance.now() + r.timeoutMs;
    this.#busy.add(conn);
    this.#sweep ??= setInterval(() => this.#timeouts(), SWEEP_MS);
    try {
      let at = 0;
      while (at < message.length) {
        at += await conn.tcp.write(message.subarray(at));
      }
      const res = await this.#readResponse(conn, r.method);
      this.#busy.delete(conn);
      if (conn.dead || res.close) conn.close();
      else this.#release(origin, conn);
      return res.response;
    } catch (e) {
      this.#busy.delete(conn);
      conn.close();
      if (e instanceof EdgeError && e.code === "bad_gateway") throw e;
      throw conn.timedOut
        ? new EdgeError(
          "timeout",
          `${origin}: no answer within ${r.timeoutMs} ms`,
          { sent: true },
        )
        : new EdgeError(
          "unavailable",
          `${origin}: the connection failed after the request was sent: ${
            e instanceof Error ? e.message : e
          }`,
          { sent: true },
          e,
        );
    }
  }

  /** Closes every connection; requests in flight fail. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#sweep);
    this.#sweep = undefined;
    for (const list of this.#idle.values()) for (const c of list) c.close();
    this.#idle.clear();
    for (const c of this.#busy) c.close();
    this.#busy.clear();
  }

  /** Closes the connections whose request is past its deadline; stops when none is out. */
  #timeouts(): void {
    if (this.#busy.size === 0) {
      clearInterval(this.#sweep);
      this.#sweep = undefined;
      return;
    }
    const now = performance.now();
    for (const c of this.#busy) {
      if (now >= c.deadline) {
        c.timedOut = true;
        c.close();
      }
    }
  }

  /** An idle connection to `origin` whose server has not closed it, else a new one. */
  async #take(
    origin: string,
    host: string,
    port: number,
    timeoutMs: number,
  ): Promise<Conn> {
    const list = this.#idle.get(origin);
    while (list !== undefined && list.length > 0) {
      const c = list.pop()!;
      c.idle = false;
      if (!c.dead) return c;
    }
    let tcp: Deno.TcpConn;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const connecting = Deno.connect({ hostname: host, port });
    try {
      tcp = await Promise.race([
        connecting,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new EdgeError(
                  "timeout",
                  `${origin}: not connected within ${timeoutMs} ms`,
                  { sent: false },
                ),
              ),
            timeoutMs,
          );
        }),
      ]);
    } catch (e) {
      // A connection made after the deadline is not used.
      connecting.then((c) => c.close(), () => {});
      if (e instanceof EdgeError) throw e;
      throw new EdgeError(
        "unavailable",
        `${origin}: could not connect: ${e instanceof Error ? e.message : e}`,
        { sent: false },
        e,
      );
    } finally {
      clearTimeout(timer);
    }
    tcp.setNoDelay(true);
    tcp.unref();
    return new Conn(tcp);
  }

  /** Back to the pool with a read pending, which sees the server close it. */
  #release(origin: string, conn: Conn): void {
    let list = this.#idle.get(origin);
    if (list === undefined) this.#idle.set(origin, list = []);
    if (list.length >= this.#maxIdle || conn.start !== conn.end) {
      // Bytes nobody asked for: the connection is out of step.
      conn.close();
      return;
    }
    const pending = conn.read();
    conn.pending = pending;
    conn.idle = true;
    pending.then(
      (n) => {
        // While idle, any byte or the end means the connection is done.
        if (conn.idle) {
          conn.idle = false;
          conn.close();
          const i = list.indexOf(conn);
          if (i >= 0) list.splice(i, 1);
        } else if (n === null) conn.dead = true;
      },
      () => {
        conn.dead = true;
      },
    );
    list.push(conn);
  }

  /** An answer over the size limit (the request was sent). */
  #tooBig(): EdgeError {
    return new EdgeError(
      "bad_gateway",
      `the answer is over ${this.#maxBytes} bytes`,
      { sent: true },
    );
  }

  /** Reads from `conn` (the pending read first) until `want` says it has enough. */
  async #fill(conn: Conn): Promise<void> {
    const p = conn.pending ?? conn.read();
    conn.pending = null;
    const n = await p;
    if (n === null) throw new Error("the server closed the connection");
    conn.end += n;
    if (conn.end - conn.start > this.#maxBytes) {
      throw this.#tooBig();
    }
  }

  async #readResponse(
    conn: Conn,
    method: string,
  ): Promise<{ response: Http1Response; close: boolean }> {
    for (;;) {
      let headEnd = indexOf(conn.buf, CRLFCRLF, conn.start, conn.end);
      while (headEnd < 0) {
        await this.#fill(conn);
        headEnd = indexOf(conn.buf, CRLFCRLF, conn.start, conn.end);
      }
      const head = bytesToLatin1(conn.buf.subarray(conn.start, headEnd));
      conn.start = headEnd + 4;
      const lines = head.split("\r\n");
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]!);
      if (!m) throw new Error(`not an HTTP/1.1 answer: ${lines[0]}`);
      const status = Number(m[1]);
      const headers = new Map<string, string>();
      for (let i = 1; i < lines.length; i++) {
        const line = lines[i]!;
        const colon = line.indexOf(":");
        if (colon <= 0) throw new Error(`a malformed header line: ${line}`);
        const name = line.slice(0, colon).trim().toLowerCase();
        const value = line.slice(colon + 1).trim();
        const had = headers.get(name);
        headers.set(name, had === undefined ? value : `${had}, ${value}`);
      }
      if (status >= 100 && status < 200) continue; // interim: the answer follows
      const close = /\bclose\b/i.test(headers.get("connection") ?? "") ||
        lines[0]!.startsWith("HTTP/1.0");
      const noBody = method === "HEAD" || status === 204 || status === 304;
      const te = headers.get("transfer-encoding");
      const cl = headers.get("content-length");
      let body: Uint8Array;
      if (noBody) body = new Uint8Array(0);
      else if (te !== undefined && /chunked/i.test(te)) {
        body = await this.#chunked(conn);
      } else if (cl !== undefined) {
        const length = Number(cl);
        if (!Number.isSafeInteger(length) || length < 0) {
          throw new Error(`a bad content-length: ${cl}`);
        }
        if (length > this.#maxBytes) {
          throw this.#tooBig();
        }
        while (conn.end - conn.start < length) await this.#fill(conn);
        body = conn.buf.slice(conn.start, conn.start + length);
        conn.start += length;
      } else {
        // Delimited by the end of the connection.
        for (;;) {
          const p = conn.pending ?? conn.read();
          conn.pending = null;
          const n = await p;
          if (n === null) break;
          conn.end += n;
          if (conn.end - conn.start > this.#maxBytes) {
            throw this.#tooBig();
          }
        }
        body = conn.buf.slice(conn.start, conn.end);
        conn.start = conn.end;
        return { response: { status, headers, body }, close: true };
      }
      return { response: { status, headers, body }, close };
    }
  }

  async #chunked(conn: Conn): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      let eol = indexOf(conn.buf, [13, 10], conn.start, conn.end);
      while (eol < 0) {
        await this.#fill(conn);
        eol = indexOf(conn.buf, [13, 10], conn.start, conn.end);
      }
      const size = parseInt(
        latin1.decode(conn.buf.subarray(conn.start, eol)).split(";")[0]!,
        16,
      );
      if (!Number.isSafeInteger(size) || size < 0) {
        throw new Error("a bad chunk size");
      }
      conn.start = eol + 2;
      if (size === 0) {
        // Trailers (ignored) end with an empty line.
        for (;;) {
          let e = indexOf(conn.buf, [13, 10], conn.start, conn.end);
          while (e < 0) {
            await this.#fill(conn);
            e = indexOf(conn.buf, [13, 10], conn.start, conn.end);
          }
          const empty = e === conn.start;
          conn.start = e + 2;
          if (empty) break;
        }
        break;
      }
      total += size;
      if (total > this.#maxBytes) {
        throw this.#tooBig();
      }
      while (conn.end - conn.start < size + 2) await this.#fill(conn);
      parts.push(conn.buf.slice(conn.start, conn.start + size));
      conn.start += size + 2;
    }
    if (parts.length === 1) return parts[0]!;
    const out = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

/** Origin, host, port and path of an `http://` URL. */
function splitUrl(
  url: string,
): { origin: string; host: string; port: number; path: string } {
  if (!url.startsWith("http://")) {
    throw new EdgeError("bad_request", `not an http:// URL: ${url}`, {
      sent: false,
    });
  }
  const slash = url.indexOf("/", 7);
  const origin = slash < 0 ? url : url.slice(0, slash);
  const path = slash < 0 ? "/" : url.slice(slash);
  const authority = origin.slice(7);
  const colon = authority.lastIndexOf(":");
  const bracket = authority.lastIndexOf("]");
  const hasPort = colon > bracket;
  let host = hasPort ? authority.slice(0, colon) : authority;
  if (host.startsWith("[")) host = host.slice(1, -1);
  const port = hasPort ? Number(authority.slice(colon + 1)) : 80;
  if (!Number.isInteger(port) || port <= 0 || port > 65535 || host === "") {
    throw new EdgeError("bad_request", `a bad URL: ${url}`, { sent: false });
  }
  return { origin, host, port, path };
}

/** The request's bytes: head and body in one buffer (one socket write). */
function encodeRequest(r: Http1Request, authority: string, path: string) {
  const body = r.body === undefined
    ? undefined
    : typeof r.body === "string"
    ? encoder.encode(r.body)
    : r.body;
  let head = `${r.method} ${path} HTTP/1.1\r\nhost: ${authority}\r\n`;
  for (const name in r.headers) {
    const value = r.headers[name]!;
    if (/[\r\n]/.test(name) || /[\r\n]/.test(value)) {
      throw new EdgeError("bad_request", `header ${name}: CR or LF`, {
        sent: false,
      });
    }
    head += `${name}: ${value}\r\n`;
  }
  if (body !== undefined) head += `content-length: ${body.length}\r\n`;
  head += "\r\n";
  const h = encoder.encode(head);
  if (body === undefined) return h;
  const out = new Uint8Array(h.length + body.length);
  out.set(h);
  out.set(body, h.length);
  return out;
}

/**
 * `bytes` as Latin-1 text. A short head goes through `fromCharCode`: the
 * decoder's op call cost ~5% of the client's CPU per answer.
 */
function bytesToLatin1(bytes: Uint8Array): string {
  if (bytes.length > 4096) return latin1.decode(bytes);
  return String.fromCharCode.apply(null, bytes as unknown as number[]);
}

/** First index of `pattern` in `buf[from, to)`, or -1. */
function indexOf(
  buf: Uint8Array,
  pattern: number[],
  from: number,
  to: number,
): number {
  const first = pattern[0]!;
  const last = to - pattern.length;
  for (let i = buf.indexOf(first, from); i >= 0 && i <= last;) {
    let k = 1;
    while (k < pattern.length && buf[i + k] === pattern[k]) k++;
    if (k === pattern.length) return i;
    i = buf.indexOf(first, i + 1);
  }
  return -1;
}
