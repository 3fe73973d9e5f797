import {
  connectTcp,
  isTransportError,
  type TcpConnection,
} from "@strata/transport";
import {
  AppendRecord,
  ApplyBytes,
  DATA_FRAME_MAX_BYTES,
  type DataMessages,
  dataMessages,
  ReadChunk,
  refusalError,
} from "../shared/data_protocol.ts";
import { GfsError } from "../shared/gfs_error.ts";
import { connectWithin } from "./connect_within.ts";
import { PortDiscovery } from "./port_discovery.ts";

type Conn = TcpConnection<DataMessages>;

/** Longest wait for a data port connection and its handshake, ms. */
const DIAL_MS = 5_000;

/** Options of a {@link DataPorts} pool. */
export interface DataPortsOptions {
  /** The user's token (proved in the transport's handshake, never sent). */
  token?: string;
  /** Fetch client for the one status call that finds a server's data port. */
  httpClient?: Deno.HttpClient;
  /** Shared port discovery (default: the pool's own). */
  discovery?: PortDiscovery;
  /** Connections per chunkserver at most (default 2); calls share them. */
  connectionsPerServer?: number;
}

interface Pool {
  conns: Conn[];
  dialing: Promise<Conn> | null;
}

/**
 * The client's connections to chunkservers' data ports, per server: at
 * most `connectionsPerServer` framed TCP connections, each carrying many
 * calls at once (the transport's call ids), so sixteen concurrent readers
 * or appenders share a socket or two. A server's data port is learned
 * once from its `/v1/health` (cached); a server without one (older, or
 * serving TLS) answers `null` and the caller uses HTTP. Connections are
 * unref'd: a program that is done exits without closing the pool.
 */
export class DataPorts {
  readonly #o: DataPortsOptions;
  readonly #discovery: PortDiscovery;
  readonly #pools = new Map<string, Pool>();
  #closed = false;

  /** @param options token, fetch client, pool size. */
  constructor(options: DataPortsOptions = {}) {
    this.#o = options;
    this.#discovery = options.discovery ??
      new PortDiscovery(options.token, options.httpClient);
  }

  /**
   * Reads part of a chunk from `server` over its data port.
   * @returns the bytes, or null when the server has no data port (use HTTP).
   * @throws GfsError as the server refused, or `unavailable` (unreachable,
   *   connection lost, timed out), `unauthorized` (token not accepted).
   */
  async read(
    server: string,
    m: { handle: number; version: number; offset: number; length: number },
    timeoutMs: number,
  ): Promise<Uint8Array | null> {
    const conn = await this.#connection(server, timeoutMs);
    if (conn === null) return null;
    const reply = await this.#call(
      server,
      conn,
      () => conn.call(ReadChunk, m, { timeoutMs }),
    );
    if (reply.type === "ChunkBytes") return reply.message.bytes;
    throw this.#unexpected(server, reply);
  }

  /**
   * Appends a framed record at the primary `server` over its data port.
   * @returns where it landed, or null when the server has no data port.
   * @throws GfsError as {@link DataPorts.read}.
   */
  async append(
    server: string,
    m: {
      handle: number;
      version: number;
      secondaries: string[];
      data: Uint8Array;
    },
    timeoutMs: number,
  ): Promise<{ offset: number } | null> {
    const conn = await this.#connection(server, timeoutMs);
    if (conn === null) return null;
    const reply = await this.#call(server, conn, () =>
      conn.call(
        AppendRecord,
        { ...m, data: m.data as Uint8Array<ArrayBuffer> },
        { timeoutMs },
      ));
    if (reply.type === "RecordAppended") return reply.message;
    throw this.#unexpected(server, reply);
  }

  /**
   * Forwards a record-append batch to the secondary `server` over its data
   * port (the pool's token must be the cell's peer secret).
   * @returns the chunk's length there, or null when it has no data port.
   * @throws GfsError as {@link DataPorts.read}; when `signal` aborts, its
   *   reason (or `unavailable` once the call was sent).
   */
  applyBytes(
    server: string,
    m: ApplyBytesCall,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<{ length: number } | null> {
    // With a connection at hand the call is sent now, in the caller's turn:
    // a primary forwards a batch before its own write and sync, which may
    // hold the event loop (see the chunk store's journal).
    if (signal?.aborted) return Promise.reject(signal.reason);
    const ready = this.#closed ? undefined : this.#pooled(server, timeoutMs);
    if (ready !== undefined) {
      return this.#applyOn(server, ready, m, timeoutMs, signal);
    }
    return this.#applyBytesDialing(server, m, timeoutMs, signal);
  }

  async #applyBytesDialing(
    server: string,
    m: ApplyBytesCall,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<{ length: number } | null> {
    // Finding the port and dialing do not wait out an abort (a partitioned
    // secondary must not hold its primary's chunk queue for the dial timeouts).
    const conn = await abortable(this.#connection(server, timeoutMs), signal);
    if (conn === null) return null;
    return await this.#applyOn(server, conn, m, timeoutMs, signal);
  }

  async #applyOn(
    server: string,
    conn: Conn,
    m: ApplyBytesCall,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<{ length: number }> {
    const reply = await this.#call(server, conn, () =>
      conn.call(
        ApplyBytes,
        { ...m, data: m.data as Uint8Array<ArrayBuffer> },
        { timeoutMs, signal },
      ));
    if (reply.type === "BytesApplied") return reply.message;
    throw this.#unexpected(server, reply);
  }

  /** Closes every connection (calls in flight fail). */
  async close(): Promise<void> {
    this.#closed = true;
    const all = [...this.#pools.values()].flatMap((p) => p.conns);
    this.#pools.clear();
    await Promise.allSettled(all.map((c) => c.close()));
  }

  async #call(
    server: string,
    conn: Conn,
    call: () => ReturnType<Conn["call"]>,
  ) {
    try {
      const reply = await call();
      if (reply.type === "DataRefused") throw refusalError(reply.message);
      return reply;
    } catch (e) {
      if (!isTransportError(e)) throw e;
      if (e.code === "connection_lost" || e.code === "closed") {
        this.#drop(server, conn);
      }
      throw new GfsError(
        "unavailable",
        `data port of ${server}: ${e.code}: ${e.message}`,
      );
    }
  }

  #unexpected(server: string, reply: { type: string }): GfsError {
    return new GfsError(
      "unavailable",
      `data port of ${server} answered ${reply.type}`,
    );
  }

  /** A connection to `server`'s data port, or null when it has none. */
  async #connection(
    server: string,
    timeoutMs: number,
  ): Promise<Conn | null> {
    if (this.#closed) throw new GfsError("unavailable", "client closed");
    const pooled = this.#pooled(server, timeoutMs);
    if (pooled !== undefined) return pooled;
    const port = (await this.#discovery.get(server, timeoutMs)).dataPort;
    if (port === null) return null;
    const p = this.#pools.get(server) ?? { conns: [], dialing: null };
    this.#pools.set(server, p);
    if (p.conns.length > 0) return p.conns[0]!;
    return await (p.dialing ?? this.#dial(server, p, timeoutMs, port));
  }

  /**
   * The least busy pooled connection to `server` (dialing another in the
   * background when every one is busy and the pool has room), or
   * undefined when it has none yet.
   */
  #pooled(server: string, timeoutMs: number): Conn | undefined {
    const pool = this.#pools.get(server);
    if (pool === undefined || pool.conns.length === 0) return undefined;
    let best = pool.conns[0]!;
    for (const c of pool.conns) if (c.inFlight < best.inFlight) best = c;
    const max = this.#o.connectionsPerServer ?? 2;
    if (best.inFlight > 0 && pool.conns.length < max && pool.dialing === null) {
      // this call uses `best`
      this.#dial(server, pool, timeoutMs).catch(() => {});
    }
    return best;
  }

  /**
   * Dials `server`'s data port (its port `known`, or asked) within
   * `timeoutMs` (at most {@link DIAL_MS}) and adds the connection to `pool`.
   */
  #dial(
    server: string,
    pool: Pool,
    timeoutMs: number,
    known?: number,
  ): Promise<Conn> {
    const dialing = (async () => {
      const port = known ?? (await this.#discovery.get(server, 5_000)).dataPort;
      if (port === null) {
        throw new GfsError("unavailable", `${server} has no data port`);
      }
      let conn: Conn;
      try {
        // The dial and handshake within DIAL_MS: the transport's dial has
        // no deadline, and one to a server behind a silent partition
        // waits out the kernel's SYN retries (about 2 min).
        conn = await connectWithin(
          connectTcp<DataMessages>(
            {
              hostname: new URL(server).hostname.replace(/^\[|\]$/g, ""),
              port,
            },
            {
              set: dataMessages,
              secret: this.#o.token,
              maxFrameBytes: DATA_FRAME_MAX_BYTES,
              differential: false,
              maxQueuedBytes: 2 * DATA_FRAME_MAX_BYTES,
              handshakeTimeoutMs: DIAL_MS,
              unref: true,
            },
          ),
          Math.min(DIAL_MS, timeoutMs),
          `the data port of ${server}`,
        );
      } catch (e) {
        // A restarted server may listen elsewhere: ask again next time.
        this.#discovery.forget(server);
        if (e instanceof GfsError) throw e; // not connected in time
        if (isTransportError(e, "auth_failed")) {
          throw new GfsError(
            "unauthorized",
            `the data port of ${server} did not accept this client's token`,
          );
        }
        throw new GfsError(
          "unavailable",
          `cannot reach the data port of ${server}: ${
            e instanceof Error ? e.message : String(e)
          }`,
        );
      }
      if (this.#closed) {
        await conn.close();
        throw new GfsError("unavailable", "client closed");
      }
      pool.conns.push(conn);
      conn.closed.then(() => this.#drop(server, conn));
      return conn;
    })();
    pool.dialing = dialing;
    dialing.catch(() => {}).finally(() => {
      if (pool.dialing === dialing) pool.dialing = null;
    });
    return dialing;
  }

  #drop(server: string, conn: Conn): void {
    const pool = this.#pools.get(server);
    if (pool === undefined) return;
    const i = pool.conns.indexOf(conn);
    if (i >= 0) pool.conns.splice(i, 1);
    conn.close().catch(() => {});
  }
}

/** A record-append batch a primary forwards to one secondary. */
interface ApplyBytesCall {
  handle: number;
  version: number;
  offset: number;
  seq: number | null;
  data: Uint8Array;
}

/** `p`, or its rejection with `signal`'s reason as soon as that aborts (`p` runs on). */
function abortable<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (signal === undefined) return p;
  if (signal.aborted) {
    p.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() =>
      signal.removeEventListener("abort", onAbort)
    );
  });
}
