import { backoffDelay, type BackoffPolicy } from "./backoff.ts";
import type { AnyMessageType, Envelope, MessageOf } from "./message_kinds.ts";
import type { RandomSource } from "./scheduler.ts";
import {
  connectTcp,
  type TcpAddress,
  type TcpClientOptions,
  type TcpConnection,
} from "./tcp_transport.ts";
import type { CallOptions, Transport } from "./transport.ts";
import { isTransportError, TransportError } from "./transport_error.ts";

/** Options of a {@link ReconnectingClient}. */
export interface ReconnectingClientOptions<T extends readonly AnyMessageType[]>
  extends TcpClientOptions<T> {
  /** Spacing of reconnection attempts. */
  backoff?: BackoffPolicy;
  /** Jitter source (default Math.random). */
  random?: RandomSource;
  /** Told about each new connection (after its handshake). */
  onConnect?(connection: TcpConnection<T>): void;
  /** Told about each lost connection or failed attempt. */
  onDisconnect?(error: TransportError): void;
}

/**
 * A TCP client that stays connected: when the connection drops it dials
 * again with capped exponential backoff and jitter. Calls in flight on a
 * connection that drops fail at once with its error (`connection_lost`);
 * calls and sends made while disconnected wait for the next connection, up
 * to their timeout. Each connection starts with fresh differential state.
 */
export class ReconnectingClient<T extends readonly AnyMessageType[]>
  implements Transport<T> {
  readonly peer: string;
  readonly ready: Promise<void>;
  readonly closed: Promise<TransportError>;

  readonly #address: TcpAddress;
  readonly #options: ReconnectingClientOptions<T>;
  #current: TcpConnection<T> | undefined;
  #waiters: ((c: TcpConnection<T> | TransportError) => void)[] = [];
  #stopped = false;
  #connections = 0;
  #lastError: TransportError | undefined;
  #resolveClosed!: (e: TransportError) => void;
  #wake: (() => void) | undefined;

  /** Starts connecting at once. */
  constructor(address: TcpAddress, options: ReconnectingClientOptions<T>) {
    this.#address = address;
    this.#options = options;
    this.peer = `${address.hostname ?? "127.0.0.1"}:${address.port}`;
    this.closed = new Promise((r) => this.#resolveClosed = r);
    this.ready = new Promise<void>((resolve, reject) => {
      this.#waiters.push((c) =>
        c instanceof TransportError ? reject(c) : resolve()
      );
    });
    this.ready.catch(() => {});
    this.#run();
  }

  /** Connections made so far (1 after the first, 2 after a reconnect…). */
  get connections(): number {
    return this.#connections;
  }

  /** Why the last connection or attempt failed, if one did. */
  get lastError(): TransportError | undefined {
    return this.#lastError;
  }

  /** The open connection, if any. */
  get current(): TcpConnection<T> | undefined {
    return this.#current;
  }

  async #run(): Promise<void> {
    let attempt = 0;
    while (!this.#stopped) {
      try {
        const conn = await connectTcp(this.#address, this.#options);
        if (this.#stopped) {
          await conn.close();
          break;
        }
        attempt = 0;
        this.#connections++;
        this.#current = conn;
        this.#options.onConnect?.(conn);
        for (const w of this.#waiters.splice(0)) w(conn);
        const why = await conn.closed;
        this.#current = undefined;
        this.#lastError = why;
        if (!this.#stopped) this.#options.onDisconnect?.(why);
      } catch (e) {
        const why = isTransportError(e)
          ? e
          : new TransportError("connection_lost", String(e), { cause: e });
        this.#lastError = why;
        this.#options.onDisconnect?.(why);
        // A peer that refuses us for who we are will not change its mind by
        // itself: tell the waiting callers now rather than at their timeout.
        if (
          why.code === "fingerprint_mismatch" || why.code === "auth_failed"
        ) { for (const w of this.#waiters.splice(0)) w(why); }
      }
      if (this.#stopped) break;
      const delay = backoffDelay(
        attempt++,
        this.#options.backoff,
        this.#options.random,
      );
      await new Promise<void>((resolve) => {
        const id = setTimeout(resolve, delay);
        this.#wake = () => {
          clearTimeout(id);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  /** The open connection, or the next one within `timeoutMs`. */
  async #connection(
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<TcpConnection<T>> {
    if (this.#stopped) {
      throw new TransportError("closed", `client for ${this.peer} is closed`);
    }
    const c = this.#current;
    if (c && !c.failure) return c;
    return await new Promise<TcpConnection<T>>((resolve, reject) => {
      const settle = (v: TcpConnection<T> | TransportError) => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        if (v instanceof TransportError) reject(v);
        else resolve(v);
      };
      const drop = () => {
        this.#waiters = this.#waiters.filter((w) => w !== settle);
      };
      const onAbort = () => {
        drop();
        settle(new TransportError("cancelled", "the call was aborted"));
      };
      const timer = setTimeout(() => {
        drop();
        settle(
          new TransportError(
            "connection_lost",
            `not connected to ${this.peer} within ${timeoutMs} ms` +
              (this.#lastError
                ? ` (last error: ${this.#lastError.message})`
                : ""),
          ),
        );
      }, timeoutMs);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(settle);
    });
  }

  /** See {@link Transport.send}; waits for a connection up to the call timeout. */
  async send<M extends T[number]>(
    type: M,
    message: MessageOf<M>,
  ): Promise<void> {
    const conn = await this.#connection(this.#options.callTimeoutMs ?? 5_000);
    await conn.send(type, message);
  }

  /** See {@link Transport.call}; the timeout covers waiting for a connection. */
  async call<M extends T[number]>(
    type: M,
    message: MessageOf<M>,
    options: CallOptions = {},
  ): Promise<Envelope<T>> {
    const timeoutMs = options.timeoutMs ?? this.#options.callTimeoutMs ??
      5_000;
    const start = performance.now();
    const conn = await this.#connection(timeoutMs, options.signal);
    const left = Math.max(1, timeoutMs - (performance.now() - start));
    return await conn.call(type, message, { ...options, timeoutMs: left });
  }

  /** Stops reconnecting and closes the connection. */
  async close(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#wake?.();
    const why = new TransportError("closed", `client for ${this.peer} closed`);
    for (const w of this.#waiters.splice(0)) w(why);
    await this.#current?.close();
    this.#resolveClosed(why);
  }
}
