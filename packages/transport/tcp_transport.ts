import type { MessageSet } from "@strata/codec";
import {
  differentialOptions,
  differentialSignature,
} from "./differential_codec.ts";
import { connectWithin } from "./connect_within.ts";
import { Handshake, type Role, type Secret } from "./handshake.ts";
import type { AnyMessageType } from "./message_kinds.ts";
import { RpcSession, type SessionOptions } from "./rpc_session.ts";
import { realTimers } from "./scheduler.ts";
import { TcpLink } from "./tcp_link.ts";
import type { Handlers } from "./transport.ts";
import { isTransportError, TransportError } from "./transport_error.ts";

/** Options shared by TCP clients and servers. */
export interface TcpOptions<T extends readonly AnyMessageType[]>
  extends SessionOptions {
  /** The message set both peers hold (its fingerprint is checked). */
  set: MessageSet<T>;
  /**
   * Shared secret for the HMAC challenge–response; both sides or neither.
   * A server may accept any of a list (e.g. per-role tokens).
   */
  secret?: Secret | readonly Secret[];
  /** What to do with the peer's messages and calls. */
  handlers?: Handlers<T>;
  /** Bytes queued per connection before `send` waits (default 1 MiB). */
  maxQueuedBytes?: number;
}

/**
 * TLS for a dialing side: the peer's certificate must chain to `caCerts`
 * (PEM texts; e.g. a cluster's self-signed certificate) or to the system's
 * roots, and name the dialed host (or `serverName`).
 */
export interface TcpClientTls {
  /** Extra trusted roots, PEM texts. */
  caCerts?: string[];
  /** Name the certificate must carry (default: the dialed hostname). */
  serverName?: string;
}

/** TLS for a listening side: its certificate chain and private key, PEM texts. */
export interface TcpServerTls {
  cert: string;
  key: string;
}

/** Options of {@link connectTcp} (and of a reconnecting client). */
export interface TcpClientOptions<T extends readonly AnyMessageType[]>
  extends TcpOptions<T> {
  /** Speak TLS to the peer (which must listen with TLS). */
  tls?: TcpClientTls;
  /**
   * The open connection does not keep the process alive (`Deno.Conn.unref`):
   * for a library's pooled connections, so a program that is done exits
   * without closing them.
   */
  unref?: boolean;
  /**
   * Give up dialing after this long (default 5,000 ms). `Deno.connect` has
   * no deadline: to a peer whose packets are dropped (a silent partition)
   * the kernel resends the SYN for about two minutes, and a reconnecting
   * client stuck in one such dial would notice a healed network only at the
   * next resend (up to 64 s later) instead of at its next attempt.
   */
  connectTimeoutMs?: number;
}

/** A TCP connection: a {@link RpcSession} over a Deno socket. */
export type TcpConnection<T extends readonly AnyMessageType[]> = RpcSession<
  T
>;

const READ_BUFFER_BYTES = 64 * 1024;

/** Wires a socket to a session and starts reading; returns at once. */
function attach<T extends readonly AnyMessageType[]>(
  conn: Deno.Conn,
  role: Role,
  options: TcpOptions<T>,
  plain: boolean,
): RpcSession<T> {
  const peer = peerOf(conn);
  // The link reports a broken socket to the session built just below.
  const ref: { session?: RpcSession<T> } = {};
  const link = new TcpLink(conn, {
    maxQueuedBytes: options.maxQueuedBytes,
    onBroken: (e) =>
      ref.session?.fail(
        new TransportError("connection_lost", `writing to ${peer} failed`, {
          cause: e,
        }),
      ),
  });
  const s = new RpcSession<T>({
    set: options.set,
    peer,
    link,
    timers: realTimers,
    handlers: options.handlers,
    handshake: new Handshake({
      role,
      fingerprint: options.set.fingerprint,
      differential: differentialSignature(
        options.set,
        differentialOptions(options.differential),
      ),
      secret: options.secret,
      nonce: crypto.getRandomValues(new Uint8Array(32)),
    }),
    options,
  });
  ref.session = s;
  s.start();
  (async () => {
    const buf = new Uint8Array(READ_BUFFER_BYTES);
    let first = plain;
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) {
          s.endOfStream();
          return;
        }
        // A TLS peer on a plain socket: name the mismatch, not "bad magic".
        if (first && n >= 2 && isTlsRecord(buf)) {
          s.fail(
            new TransportError(
              "tls_failed",
              `${peer} speaks TLS but this side of the connection does not`,
            ),
          );
          return;
        }
        first = false;
        // The session copies what it keeps, so the buffer can be reused.
        s.receive(buf.subarray(0, n));
        if (s.failure) return;
      }
    } catch (e) {
      s.fail(
        new TransportError("connection_lost", `reading from ${peer} failed`, {
          cause: e,
        }),
      );
    }
  })();
  return s;
}

/** A TLS record header: content type 20–23, protocol major version 3. */
function isTlsRecord(bytes: Uint8Array): boolean {
  return bytes[0]! >= 20 && bytes[0]! <= 23 && bytes[1] === 3;
}

function peerOf(conn: Deno.Conn): string {
  const remote = conn.remoteAddr as Deno.NetAddr;
  return `${remote.hostname}:${remote.port}`;
}

/**
 * Runs a TLS handshake to completion within `ms`.
 * @throws TransportError `tls_failed` naming the peer and the TLS reason
 *   (the socket is closed).
 */
async function tlsHandshake(
  conn: Deno.TlsConn,
  peer: string,
  ms: number,
): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      conn.handshake(),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no TLS handshake within ${ms} ms`)),
          ms,
        );
      }),
    ]);
  } catch (e) {
    try {
      conn.close();
    } catch {
      // Closed already by the failed handshake.
    }
    throw new TransportError(
      "tls_failed",
      `TLS handshake with ${peer} failed: ${
        e instanceof Error ? e.message : String(e)
      }`,
      { cause: e },
    );
  } finally {
    clearTimeout(timer);
  }
}

/** Where to dial. */
export interface TcpAddress {
  /** Host name or address (default "127.0.0.1"). */
  hostname?: string;
  port: number;
}

/**
 * Dials a peer and completes the handshake.
 * @returns the open connection.
 * @throws TransportError `connection_lost` (cannot connect), `tls_failed`
 *   (with `tls`: the peer does not speak TLS or its certificate is not
 *   trusted), `handshake_failed`, `fingerprint_mismatch` or `auth_failed`.
 */
export async function connectTcp<T extends readonly AnyMessageType[]>(
  address: TcpAddress,
  options: TcpClientOptions<T>,
): Promise<TcpConnection<T>> {
  const hostname = address.hostname ?? "127.0.0.1";
  let conn: Deno.Conn;
  try {
    const ms = options.connectTimeoutMs ?? 5_000;
    const tcp = await connectWithin(
      Deno.connect({ hostname, port: address.port }),
      ms,
      () => new Error(`not connected within ${ms} ms`),
    );
    // Frames are whole messages: send them now rather than wait for more
    // (set on the socket before TLS wraps it; a TlsConn has no such switch).
    tcp.setNoDelay(true);
    conn = tcp;
    if (options.tls) {
      const tls = await Deno.startTls(tcp, {
        hostname: options.tls.serverName ?? hostname,
        caCerts: options.tls.caCerts,
      });
      conn = tls;
      await tlsHandshake(
        tls,
        `${hostname}:${address.port}`,
        options.handshakeTimeoutMs ?? 10_000,
      );
    }
  } catch (e) {
    if (isTransportError(e)) throw e;
    throw new TransportError(
      "connection_lost",
      `cannot connect to ${hostname}:${address.port}: ${
        e instanceof Error ? e.message : String(e)
      }`,
      { cause: e },
    );
  }
  const session = attach(conn, "client", options, !options.tls);
  await session.ready;
  // After the handshake: a call in flight keeps the process alive by its timer.
  if (options.unref) conn.unref();
  return session;
}

/** Options of {@link listenTcp}. */
export interface TcpServerOptions<T extends readonly AnyMessageType[]>
  extends TcpOptions<T> {
  /** Interface to bind (default "127.0.0.1"). */
  hostname?: string;
  /** Port (default 0: a free one; read it from `server.port`). */
  port?: number;
  /** Called for each accepted connection, before its handshake. */
  onConnection?(connection: TcpConnection<T>): void;
  /**
   * Listen with TLS: every connection must complete a TLS handshake
   * (within `handshakeTimeoutMs`) before any frame is read.
   */
  tls?: TcpServerTls;
  /**
   * Told about each accepted socket dropped before a session started: with
   * `tls`, a peer that does not speak TLS or rejected the certificate
   * (`tls_failed`).
   */
  onRefused?(peer: string, error: TransportError): void;
}

/** A listening TCP server; each connection is served independently. */
export class TcpServer<T extends readonly AnyMessageType[]> {
  /** Connections currently open. */
  readonly connections: Set<TcpConnection<T>> = new Set();
  readonly #listener: Deno.Listener;
  readonly #accepting: Promise<void>;
  readonly #handshakes = new Set<Promise<void>>();
  #closed = false;

  /** Prefer {@link listenTcp}. */
  constructor(
    listener: Deno.Listener<Deno.TcpConn | Deno.TlsConn, Deno.NetAddr>,
    options: TcpServerOptions<T>,
  ) {
    this.#listener = listener;
    const start = (conn: Deno.Conn) => {
      if (this.#closed) {
        conn.close();
        return;
      }
      const session = attach(conn, "server", options, !options.tls);
      this.connections.add(session);
      session.closed.then(() => this.connections.delete(session));
      options.onConnection?.(session);
    };
    this.#accepting = (async () => {
      try {
        for await (const conn of listener) {
          if (!options.tls) {
            (conn as Deno.TcpConn).setNoDelay(true);
            start(conn);
            continue;
          }
          // Handshakes run beside the accept loop: a silent client must not
          // hold up the next one.
          const peer = peerOf(conn);
          const handshake = tlsHandshake(
            conn as Deno.TlsConn,
            peer,
            options.handshakeTimeoutMs ?? 10_000,
          ).then(
            () => start(conn),
            (e: TransportError) => {
              if (!this.#closed) options.onRefused?.(peer, e);
            },
          ).finally(() => this.#handshakes.delete(handshake));
          this.#handshakes.add(handshake);
        }
      } catch {
        // The listener was closed: accepting is over.
      }
    })();
  }

  /** The bound port. */
  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  /** Stops accepting and closes every connection. */
  async close(): Promise<void> {
    this.#closed = true;
    try {
      this.#listener.close();
    } catch {
      // Closed already.
    }
    await this.#accepting;
    await Promise.all([...this.#handshakes]);
    const all = [...this.connections];
    await Promise.all(all.map((c) => c.close()));
    await Promise.all(all.map((c) => c.closed));
  }
}

/**
 * Starts a TCP server (TLS with `options.tls`).
 * @throws Deno errors when the port is taken or the key/cert are invalid.
 */
export function listenTcp<T extends readonly AnyMessageType[]>(
  options: TcpServerOptions<T>,
): TcpServer<T> {
  const hostname = options.hostname ?? "127.0.0.1";
  const port = options.port ?? 0;
  const listener = options.tls
    ? Deno.listenTls({
      hostname,
      port,
      transport: "tcp",
      cert: options.tls.cert,
      key: options.tls.key,
    })
    : Deno.listen({ hostname, port, transport: "tcp" });
  return new TcpServer(listener, options);
}
