import {
  BULK_MAGIC,
  bulkProof,
  type BulkReply,
  BulkReplySchema,
  type BulkRequest,
  encodeHeader,
  hasMagic,
  NONCE_BYTES,
  proofsEqual,
  ReadAhead,
  readExact,
  readHeader,
  writeAll,
} from "../shared/bulk_protocol.ts";
import { GfsError, gfsErrorFromBody } from "../shared/gfs_error.ts";
import { connectWithin } from "./connect_within.ts";
import { PortDiscovery } from "./port_discovery.ts";
import type { WriteGrant } from "../shared/write_grant.ts";

/** Options of a {@link BulkPorts} pool. */
export interface BulkPortsOptions {
  /** The token proved in the handshake (never sent): a user's, or the peer secret. */
  token?: string;
  /** Fetch client for the status call that finds a server's bulk port. */
  httpClient?: Deno.HttpClient;
  /** Shared port discovery (default: a pool's own). */
  discovery?: PortDiscovery;
  /** Idle connections kept per server (default 4). */
  idlePerServer?: number;
}

/**
 * One authenticated connection to a chunkserver's bulk port, carrying one
 * exchange at a time. Any failure or timeout closes it (the stream's
 * position is then unknown); a clean exchange returns it to the pool.
 */
export class BulkConn {
  #broken = false;
  /**
   * Every read of the socket: a small read's reply header and bytes come
   * in one socket read (the buffer holds a 64 KiB block and its header).
   */
  readonly #in: ReadAhead;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** When the exchange in progress times out (0: none in progress). */
  #due = 0;
  #reffed = false;
  /** When the armed timer fires. */
  #firesAt = 0;

  /**
   * @param conn the socket, handshake done; @param server whose it is;
   * @param onClose called once when it closes.
   */
  constructor(
    readonly conn: Deno.TcpConn,
    readonly server: string,
    readonly onClose?: () => void,
  ) {
    this.#in = new ReadAhead(conn, 64 * 1024 + 1024);
  }

  /** Whether it failed (and must not be reused). */
  get broken(): boolean {
    return this.#broken;
  }

  /**
   * Closes the socket if the exchange takes longer than `ms` (cleared by
   * {@link settle}). One timer per connection is re-armed only when it
   * fires, not set and cleared per exchange: that pair, on both sides,
   * cost ~0.1 ms of a 4 KiB read's latency (measured on the loaded
   * machine). The timer is unref'd;
   * the socket is ref'd while an exchange runs, so a program waiting on
   * one stays alive.
   */
  deadline(ms: number): void {
    if (this.#broken) return;
    this.#due = performance.now() + ms;
    if (!this.#reffed) {
      this.#reffed = true;
      this.conn.ref();
    }
    // Re-armed only when the armed timer would fire after this deadline
    // (a shorter timeout than the last exchange's).
    if (this.#timer === undefined || this.#firesAt > this.#due) {
      clearTimeout(this.#timer);
      this.#arm(ms);
    }
  }

  /** The exchange is over: its deadline no longer applies. */
  settle(): void {
    this.#due = 0;
    if (this.#reffed && !this.#broken) {
      this.#reffed = false;
      this.conn.unref();
    }
  }

  #arm(ms: number): void {
    this.#firesAt = performance.now() + ms;
    const t = setTimeout(() => {
      this.#timer = undefined;
      if (this.#due === 0) return;
      const left = this.#due - performance.now();
      if (left > 0) this.#arm(left);
      else this.close();
    }, ms);
    Deno.unrefTimer(t);
    this.#timer = t;
  }

  /** Sends a header. */
  sendHeader(h: unknown): Promise<void> {
    return this.#io(() => writeAll(this.conn, encodeHeader(h)));
  }

  /** Sends raw bytes as they are. */
  send(bytes: Uint8Array): Promise<void> {
    return this.#io(() => writeAll(this.conn, bytes));
  }

  /** Reads a reply header; a refusal becomes its GfsError (the connection stays usable). */
  async reply(): Promise<Extract<BulkReply, { ok: true }>> {
    const r = await this.#io(() => readHeader(this.#in, BulkReplySchema));
    if (r === null) {
      this.close();
      throw new GfsError("unavailable", `bulk port of ${this.server} hung up`);
    }
    if ("error" in r) throw gfsErrorFromBody(503, r);
    return r;
  }

  /** Reads exactly `into.length` raw bytes into `into`. */
  async receive(into: Uint8Array): Promise<void> {
    const ok = await this.#io(() => readExact(this.#in, into));
    if (!ok && into.length > 0) {
      this.close();
      throw new GfsError("unavailable", `bulk port of ${this.server} hung up`);
    }
  }

  /** Closes the socket (an exchange in progress fails). */
  close(): void {
    this.#due = 0;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#broken) return;
    this.#broken = true;
    this.onClose?.();
    try {
      this.conn.close();
    } catch { /* already closed */ }
  }

  async #io<T>(f: () => Promise<T>): Promise<T> {
    if (this.#broken) {
      throw new GfsError(
        "unavailable",
        `bulk connection to ${this.server} is closed`,
      );
    }
    try {
      return await f();
    } catch (e) {
      const timedOut = this.#broken;
      this.close();
      if (e instanceof GfsError && e.code !== "unavailable") throw e;
      throw new GfsError(
        "unavailable",
        `bulk port of ${this.server}: ${
          timedOut ? "timed out or closed" : String(e)
        }`,
      );
    }
  }
}

/**
 * The client's connections to chunkservers' bulk ports: large reads and
 * chunk writes as raw bytes on a socket (`shared/bulk_protocol.ts`), idle
 * connections kept per server. A server's bulk port is learned from its
 * `/v1/health` (cached); one without (older, or serving TLS) gets null and
 * the caller uses HTTP. Sockets are unref'd: a finished program exits
 * without closing the pool.
 */
export class BulkPorts {
  readonly #o: BulkPortsOptions;
  readonly #discovery: PortDiscovery;
  readonly #idle = new Map<string, BulkConn[]>();
  /** Open connections per server (idle or busy). */
  readonly #live = new Map<string, number>();
  #closed = false;

  /** @param options token, fetch client, discovery, pool size. */
  constructor(options: BulkPortsOptions = {}) {
    this.#o = options;
    this.#discovery = options.discovery ??
      new PortDiscovery(options.token, options.httpClient);
  }

  /**
   * Reads part of a chunk from `server` straight into one buffer: `into`
   * when given (at least `m.length` bytes; no copy, no new memory), else
   * a new one.
   * @returns the bytes (fewer than asked past the chunk's end; a view of
   *   `into` when given), or null when the server has no bulk port (use HTTP).
   * @throws GfsError as the server refused, `unavailable`, `unauthorized`.
   */
  async read(
    server: string,
    m: {
      handle: number;
      version: number | null;
      offset: number;
      length: number;
    },
    timeoutMs: number,
    into?: Uint8Array,
  ): Promise<Uint8Array | null> {
    if (into !== undefined && into.length < m.length) {
      throw new RangeError(`buffer of ${into.length} bytes < ${m.length}`);
    }
    const c = await this.open(server, timeoutMs);
    if (c === null) return null;
    c.deadline(timeoutMs);
    try {
      await c.sendHeader({ op: "read", ...m } satisfies BulkRequest);
      const r = await c.reply();
      if (r.length > m.length) {
        c.close();
        throw new GfsError("unavailable", `${server} sent more than asked`);
      }
      const out = into?.subarray(0, r.length) ?? new Uint8Array(r.length);
      await c.receive(out);
      return out;
    } finally {
      this.release(c);
    }
  }

  /**
   * Writes `data` at `offset` of a chunk through its primary `server`,
   * which passes the bytes along `chain` while they arrive.
   * @returns the servers holding them durably, or null when a server of
   *   the chain has no bulk port (use HTTP: a server that has one could
   *   not pass the bytes on to one that has not).
   * @throws GfsError as the primary refused, `unavailable`, `unauthorized`.
   */
  async write(
    server: string,
    m: {
      handle: number;
      version: number;
      offset: number;
      chain: string[];
      grant?: WriteGrant;
    },
    data: Uint8Array,
    timeoutMs: number,
  ): Promise<string[] | null> {
    const ports = await Promise.all(
      m.chain.map((s) => this.#discovery.get(s, timeoutMs).catch(() => null)),
    );
    if (ports.some((p) => p?.bulkPort === null)) return null;
    const c = await this.open(server, timeoutMs);
    if (c === null) return null;
    c.deadline(timeoutMs);
    try {
      await c.sendHeader(
        { op: "write", ...m, length: data.length } satisfies BulkRequest,
      );
      await c.send(data);
      return (await c.reply()).servers ?? [];
    } finally {
      this.release(c);
    }
  }

  /**
   * Whether an exchange with `server` would start at once on a pooled
   * connection: one is idle, or fewer than the pool's size are open. Small
   * reads use the bulk port only then (it carries one exchange per
   * connection), and the data port, which multiplexes, otherwise.
   */
  hasRoom(server: string): boolean {
    if (this.#idle.get(server)?.some((c) => !c.broken)) return true;
    return (this.#live.get(server) ?? 0) < (this.#o.idlePerServer ?? 4);
  }

  /**
   * An idle or new connection to `server`'s bulk port (give it back with
   * {@link release}), or null when it has none.
   * @throws GfsError `unavailable`, `unauthorized`.
   */
  async open(server: string, timeoutMs: number): Promise<BulkConn | null> {
    if (this.#closed) throw new GfsError("unavailable", "client closed");
    const idle = this.#idle.get(server);
    while (idle !== undefined && idle.length > 0) {
      const c = idle.pop()!;
      if (!c.broken) return c;
    }
    const { bulkPort } = await this.#discovery.get(server, timeoutMs);
    if (bulkPort === null) return null;
    try {
      return await this.#dial(server, bulkPort, Math.min(timeoutMs, 5_000));
    } catch (e) {
      this.#discovery.forget(server);
      throw e;
    }
  }

  /** Returns a connection after its exchange (a broken one is dropped). */
  release(c: BulkConn): void {
    c.settle();
    if (c.broken) return;
    const idle = this.#idle.get(c.server) ?? [];
    if (this.#closed || idle.length >= (this.#o.idlePerServer ?? 4)) {
      c.close();
      return;
    }
    idle.push(c);
    this.#idle.set(c.server, idle);
  }

  /** Closes every idle connection; exchanges in progress finish and close. */
  close(): Promise<void> {
    this.#closed = true;
    for (const list of this.#idle.values()) for (const c of list) c.close();
    this.#idle.clear();
    return Promise.resolve();
  }

  async #dial(server: string, port: number, timeoutMs: number) {
    const hostname = new URL(server).hostname.replace(/^\[|\]$/g, "");
    let conn: Deno.TcpConn;
    try {
      // Bounded: a dial to a server behind a silent partition would
      // otherwise wait out the kernel's SYN retries (about 2 min).
      conn = await connectWithin(
        Deno.connect({ hostname, port }),
        timeoutMs,
        `the bulk port of ${server}`,
      );
    } catch (e) {
      if (e instanceof GfsError) throw e;
      throw new GfsError(
        "unavailable",
        `cannot reach the bulk port of ${server}: ${e}`,
      );
    }
    this.#live.set(server, (this.#live.get(server) ?? 0) + 1);
    const c = new BulkConn(conn, server, () => {
      const n = (this.#live.get(server) ?? 1) - 1;
      if (n > 0) this.#live.set(server, n);
      else this.#live.delete(server);
    });
    c.deadline(timeoutMs);
    try {
      conn.setNoDelay(true);
      await handshake(c, this.#o.token);
      conn.unref();
    } catch (e) {
      c.close();
      throw e;
    }
    c.settle();
    if (this.#closed) {
      c.close();
      throw new GfsError("unavailable", "client closed");
    }
    return c;
  }
}

/**
 * The client's side of the handshake: the server's hello (magic, nonce,
 * whether it wants a proof), this side's (magic, nonce, proof), then the
 * server's verdict and its own proof, checked here: both sides prove the
 * secret, neither sends it.
 */
async function handshake(c: BulkConn, token: string | undefined) {
  const hello = new Uint8Array(BULK_MAGIC.length + NONCE_BYTES + 1);
  await c.receive(hello);
  if (!hasMagic(hello)) {
    c.close();
    throw new GfsError(
      "unavailable",
      `${c.server}'s bulk port speaks another protocol`,
    );
  }
  const serverNonce = hello.subarray(
    BULK_MAGIC.length,
    BULK_MAGIC.length + NONCE_BYTES,
  );
  const authRequired = hello[hello.length - 1] === 1;
  if (authRequired !== (token !== undefined)) {
    c.close();
    throw new GfsError(
      "unauthorized",
      authRequired
        ? `the bulk port of ${c.server} needs a token`
        : `the bulk port of ${c.server} has authentication off and this client has a token`,
    );
  }
  const nonce = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  const mine = new Uint8Array(BULK_MAGIC.length + 2 * NONCE_BYTES);
  mine.set(BULK_MAGIC);
  mine.set(nonce, BULK_MAGIC.length);
  if (token !== undefined) {
    mine.set(
      bulkProof(token, "client", serverNonce, nonce),
      BULK_MAGIC.length + NONCE_BYTES,
    );
  }
  await c.send(mine);
  const verdict = new Uint8Array(1 + NONCE_BYTES);
  await c.receive(verdict);
  if (verdict[0] !== 1) {
    c.close();
    throw new GfsError(
      "unauthorized",
      `the bulk port of ${c.server} did not accept this client's token`,
    );
  }
  if (
    token !== undefined &&
    !proofsEqual(
      verdict.subarray(1),
      bulkProof(token, "server", nonce, serverNonce),
    )
  ) {
    c.close();
    throw new GfsError(
      "unauthorized",
      `${c.server}'s bulk port failed its proof`,
    );
  }
}
