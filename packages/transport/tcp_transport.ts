import type { MessageSet } from "@strata/codec";
import { Handshake, type Role } from "./handshake.ts";
import type { AnyMessageType } from "./message_kinds.ts";
import { RpcSession, type SessionOptions } from "./rpc_session.ts";
import { realTimers } from "./scheduler.ts";
import { TcpLink } from "./tcp_link.ts";
import type { Handlers } from "./transport.ts";
import { TransportError } from "./transport_error.ts";

/** Options shared by TCP clients and servers. */
export interface TcpOptions<T extends readonly AnyMessageType[]>
  extends SessionOptions {
  /** The message set both peers hold (its fingerprint is checked). */
  set: MessageSet<T>;
  /** Shared secret for the HMAC challenge–response; both sides or neither. */
  secret?: string | Uint8Array;
  /** What to do with the peer's messages and calls. */
  handlers?: Handlers<T>;
  /** Bytes queued per connection before `send` waits (default 1 MiB). */
  maxQueuedBytes?: number;
}

/** A TCP connection: a {@link RpcSession} over a Deno socket. */
export type TcpConnection<T extends readonly AnyMessageType[]> = RpcSession<
  T
>;

const READ_BUFFER_BYTES = 64 * 1024;

/** Wires a socket to a session and starts reading; returns at once. */
function attach<T extends readonly AnyMessageType[]>(
  conn: Deno.TcpConn,
  role: Role,
  options: TcpOptions<T>,
): RpcSession<T> {
  const remote = conn.remoteAddr as Deno.NetAddr;
  const peer = `${remote.hostname}:${remote.port}`;
  // Frames are whole messages: send them now rather than wait for more.
  conn.setNoDelay(true);
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
      secret: options.secret,
      nonce: crypto.getRandomValues(new Uint8Array(32)),
    }),
    options,
  });
  ref.session = s;
  s.start();
  (async () => {
    const buf = new Uint8Array(READ_BUFFER_BYTES);
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) {
          s.endOfStream();
          return;
        }
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

/** Where to dial. */
export interface TcpAddress {
  /** Host name or address (default "127.0.0.1"). */
  hostname?: string;
  port: number;
}

/**
 * Dials a peer and completes the handshake.
 * @returns the open connection.
 * @throws TransportError `connection_lost` (cannot connect),
 *   `handshake_failed`, `fingerprint_mismatch` or `auth_failed`.
 */
export async function connectTcp<T extends readonly AnyMessageType[]>(
  address: TcpAddress,
  options: TcpOptions<T>,
): Promise<TcpConnection<T>> {
  const hostname = address.hostname ?? "127.0.0.1";
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname, port: address.port });
  } catch (e) {
    throw new TransportError(
      "connection_lost",
      `cannot connect to ${hostname}:${address.port}: ${
        e instanceof Error ? e.message : String(e)
      }`,
      { cause: e },
    );
  }
  const session = attach(conn, "client", options);
  await session.ready;
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
}

/** A listening TCP server; each connection is served independently. */
export class TcpServer<T extends readonly AnyMessageType[]> {
  /** Connections currently open. */
  readonly connections: Set<TcpConnection<T>> = new Set();
  readonly #listener: Deno.TcpListener;
  readonly #accepting: Promise<void>;

  /** Prefer {@link listenTcp}. */
  constructor(listener: Deno.TcpListener, options: TcpServerOptions<T>) {
    this.#listener = listener;
    this.#accepting = (async () => {
      try {
        for await (const conn of listener) {
          const session = attach(conn, "server", options);
          this.connections.add(session);
          session.closed.then(() => this.connections.delete(session));
          options.onConnection?.(session);
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
    try {
      this.#listener.close();
    } catch {
      // Closed already.
    }
    await this.#accepting;
    const all = [...this.connections];
    await Promise.all(all.map((c) => c.close()));
    await Promise.all(all.map((c) => c.closed));
  }
}

/** Starts a TCP server. @throws Deno errors when the port is taken. */
export function listenTcp<T extends readonly AnyMessageType[]>(
  options: TcpServerOptions<T>,
): TcpServer<T> {
  const listener = Deno.listen({
    hostname: options.hostname ?? "127.0.0.1",
    port: options.port ?? 0,
    transport: "tcp",
  });
  return new TcpServer(listener, options);
}
