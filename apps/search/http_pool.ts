/**
 * A small HTTP/1.1 client with persistent (keep-alive) connections, for the
 * coordinator's calls to shard replicas. `fetch` builds a Request, headers,
 * streams and an abort signal per call; in a profile of the coordinator
 * under query load that machinery was most of its CPU. Here a call is one
 * write of a preformatted request on an idle connection and a parse of the
 * status line, Content-Length (or chunked) and body.
 */

const CRLF_CRLF = [13, 10, 13, 10];
const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** A response: status and body text. */
export interface PoolResponse {
  status: number;
  text: string;
}

/** Thrown when a call fails (network, timeout, malformed response). */
export class HttpPoolError extends Error {
  override name = "HttpPoolError";
}

class Conn {
  #buf = new Uint8Array(64 * 1024);
  #len = 0;
  closed = false;
  constructor(readonly conn: Deno.TcpConn | Deno.TlsConn) {}

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.conn.close();
    } catch { /* already closed */ }
  }

  async #fill(): Promise<void> {
    if (this.#len === this.#buf.length) {
      const bigger = new Uint8Array(this.#buf.length * 2);
      bigger.set(this.#buf.subarray(0, this.#len));
      this.#buf = bigger;
    }
    const n = await this.conn.read(this.#buf.subarray(this.#len));
    if (n === null) throw new HttpPoolError("connection closed by peer");
    this.#len += n;
  }

  #consume(n: number): void {
    this.#buf.copyWithin(0, n, this.#len);
    this.#len -= n;
  }

  #indexOf(seq: readonly number[], from = 0): number {
    const b = this.#buf;
    outer: for (let i = from; i + seq.length <= this.#len; i++) {
      for (let j = 0; j < seq.length; j++) {
        if (b[i + j] !== seq[j]) continue outer;
      }
      return i;
    }
    return -1;
  }

  async #take(n: number): Promise<Uint8Array> {
    while (this.#len < n) await this.#fill();
    const out = this.#buf.slice(0, n);
    this.#consume(n);
    return out;
  }

  async #line(): Promise<string> {
    let i: number;
    while ((i = this.#indexOf([13, 10])) < 0) await this.#fill();
    const s = decoder.decode(this.#buf.subarray(0, i));
    this.#consume(i + 2);
    return s;
  }

  /** Sends one request and reads its response; `keep` says whether the connection may be reused. */
  async call(request: Uint8Array): Promise<PoolResponse & { keep: boolean }> {
    let off = 0;
    while (off < request.length) {
      off += await this.conn.write(request.subarray(off));
    }
    let end: number;
    while ((end = this.#indexOf(CRLF_CRLF)) < 0) {
      if (this.#len > 1 << 20) {
        throw new HttpPoolError("response head too large");
      }
      await this.#fill();
    }
    const head = decoder.decode(this.#buf.subarray(0, end)).split("\r\n");
    this.#consume(end + 4);
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head[0]!)?.[1]);
    if (!Number.isInteger(status)) {
      throw new HttpPoolError(`bad status line: ${head[0]!.slice(0, 60)}`);
    }
    let length = -1;
    let chunked = false;
    let keep = head[0]!.startsWith("HTTP/1.1");
    for (let i = 1; i < head.length; i++) {
      const h = head[i]!;
      const colon = h.indexOf(":");
      const name = h.slice(0, colon).trim().toLowerCase();
      const value = h.slice(colon + 1).trim().toLowerCase();
      if (name === "content-length") length = Number(value);
      else if (name === "transfer-encoding") {
        chunked = value.includes("chunked");
      } else if (name === "connection") keep = value !== "close";
    }
    let body: Uint8Array;
    if (chunked) {
      const parts: Uint8Array[] = [];
      let total = 0;
      for (;;) {
        const size = parseInt(await this.#line(), 16);
        if (!Number.isFinite(size)) throw new HttpPoolError("bad chunk size");
        if (size === 0) {
          while ((await this.#line()) !== "");
          break;
        }
        parts.push(await this.#take(size));
        total += size;
        await this.#take(2);
      }
      body = new Uint8Array(total);
      let o = 0;
      for (const p of parts) {
        body.set(p, o);
        o += p.length;
      }
    } else if (length >= 0) {
      body = await this.#take(length);
    } else {
      // No length: the body runs to the end of the connection.
      keep = false;
      for (;;) {
        try {
          await this.#fill();
        } catch {
          break;
        }
      }
      body = this.#buf.slice(0, this.#len);
      this.#len = 0;
    }
    return { status, text: decoder.decode(body), keep };
  }
}

/**
 * Persistent connections to one `http://host:port` (or `https://`) origin:
 * each call takes an idle connection (or opens one), so concurrent calls
 * use separate connections and sequential ones reuse them.
 *
 * For idempotent calls only (the coordinator's reads, some of them POSTed
 * queries): a call that fails on a reused connection is sent once more on a
 * fresh one, and the server may have applied the first. Writes go elsewhere
 * (fetch with a one-shot body, or `@strata/edge`'s `Http1Client`, which never
 * re-sends).
 */
export class HttpPool {
  readonly #host: string;
  readonly #hostname: string;
  readonly #port: number;
  /** TLS roots for an https origin (undefined: plain TCP). */
  readonly #tls: { caCerts?: string[] } | undefined;
  /** The `authorization` header line of every request ("" without a token). */
  readonly #auth: string;
  readonly #idle: Conn[] = [];
  #closed = false;
  /** Connections opened so far (a steady load should stop opening them). */
  opened = 0;

  /**
   * @param base origin, e.g. `http://127.0.0.1:8080` or `https://…`.
   * @param token bearer token sent with every request.
   * @param caCerts PEM roots an https origin's certificate must chain to
   *   (default: the system's).
   */
  constructor(
    base: string,
    readonly maxIdle = 32,
    token?: string,
    caCerts?: string[],
  ) {
    if (token !== undefined && !/^[\x21-\x7e]+$/.test(token)) {
      throw new HttpPoolError("a token is printable ASCII without spaces");
    }
    this.#auth = token === undefined
      ? ""
      : `authorization: Bearer ${token}\r\n`;
    const u = new URL(base);
    if (u.protocol !== "http:" && u.protocol !== "https:") {
      throw new HttpPoolError(`only http: and https: origins, got ${base}`);
    }
    const tls = u.protocol === "https:";
    this.#tls = tls ? { caCerts } : undefined;
    this.#hostname = u.hostname.replace(/^\[|\]$/g, "");
    this.#port = Number(u.port || (tls ? 443 : 80));
    this.#host = u.host;
  }

  /** POSTs a JSON text; resolves with the status and body text. */
  post(path: string, json: string, timeoutMs: number): Promise<PoolResponse> {
    const body = encoder.encode(json);
    const head = encoder.encode(
      `POST ${path} HTTP/1.1\r\nhost: ${this.#host}\r\n${this.#auth}content-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`,
    );
    const req = new Uint8Array(head.length + body.length);
    req.set(head);
    req.set(body, head.length);
    return this.#send(req, timeoutMs);
  }

  /** GETs a path; resolves with the status and body text. */
  get(path: string, timeoutMs: number): Promise<PoolResponse> {
    return this.#send(
      encoder.encode(
        `GET ${path} HTTP/1.1\r\nhost: ${this.#host}\r\n${this.#auth}\r\n`,
      ),
      timeoutMs,
    );
  }

  async #send(req: Uint8Array, timeoutMs: number): Promise<PoolResponse> {
    if (this.#closed) throw new HttpPoolError("pool closed");
    // A reused connection may have been closed by the server while idle:
    // then the call is retried once on a fresh connection (idempotent
    // calls only: see the class comment).
    // One deadline for connecting and the call: towards a host behind a
    // silent partition, connect() alone would wait for the kernel's SYN
    // retries (about two minutes).
    const deadline = performance.now() + timeoutMs;
    for (let attempt = 0; attempt < 2; attempt++) {
      const reused = this.#idle.length > 0;
      let conn: Conn;
      if (reused) conn = this.#idle.pop()!;
      else {
        const connecting: Promise<Deno.TcpConn | Deno.TlsConn> = this.#tls
          ? Deno.connectTls({
            hostname: this.#hostname,
            port: this.#port,
            caCerts: this.#tls.caCerts,
          }).then(async (c) => {
            // Finish the handshake inside the connect deadline.
            await c.handshake();
            return c;
          })
          : Deno.connect({ hostname: this.#hostname, port: this.#port });
        let connectTimer: ReturnType<typeof setTimeout> | undefined;
        try {
          conn = new Conn(
            await Promise.race([
              connecting,
              new Promise<never>((_, reject) => {
                connectTimer = setTimeout(
                  () => reject(new Error(`timed out after ${timeoutMs} ms`)),
                  Math.max(0, deadline - performance.now()),
                );
              }),
            ]),
          );
        } catch (e) {
          // A connection that completes after the deadline is closed.
          connecting.then((c) => c.close(), () => {});
          throw new HttpPoolError(
            `cannot connect to ${this.#host}: ${(e as Error).message}`,
            { cause: e },
          );
        } finally {
          clearTimeout(connectTimer);
        }
        if ("setNoDelay" in conn.conn) conn.conn.setNoDelay(true);
        this.opened++;
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        const r = await Promise.race([
          conn.call(req),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => {
              conn.close();
              reject(new HttpPoolError(`timed out after ${timeoutMs} ms`));
            }, Math.max(0, deadline - performance.now()));
          }),
        ]);
        clearTimeout(timer);
        if (r.keep && !this.#closed && this.#idle.length < this.maxIdle) {
          this.#idle.push(conn);
        } else conn.close();
        return { status: r.status, text: r.text };
      } catch (e) {
        clearTimeout(timer);
        conn.close();
        const stale = reused && !(e instanceof HttpPoolError &&
          e.message.startsWith("timed out"));
        if (!stale || attempt === 1) {
          throw e instanceof HttpPoolError
            ? e
            : new HttpPoolError((e as Error).message, { cause: e });
        }
      }
    }
    throw new HttpPoolError("unreachable");
  }

  /** Closes every idle connection; later calls fail. */
  close(): void {
    this.#closed = true;
    for (const c of this.#idle.splice(0)) c.close();
  }
}
