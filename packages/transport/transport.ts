import type { AnyMessageType, Envelope, MessageOf } from "./message_kinds.ts";
import type { TransportError } from "./transport_error.ts";

/** Options of one call. */
export interface CallOptions {
  /** Milliseconds before the call fails with `timeout` (default: the connection's). */
  timeoutMs?: number;
  /** Aborting fails the call with `cancelled`; a late reply is dropped. */
  signal?: AbortSignal;
}

/**
 * A link to one peer, the same for TCP connections and the in-memory
 * network: ordered one-way messages and request/response calls.
 */
export interface Transport<T extends readonly AnyMessageType[]> {
  /** Who is at the other end ("127.0.0.1:4100", or a node id in memory). */
  readonly peer: string;
  /** Settles when messages may flow; rejects when the handshake fails. */
  readonly ready: Promise<void>;
  /** Resolves (never rejects) with the reason once the link is closed. */
  readonly closed: Promise<TransportError>;
  /**
   * Sends a one-way message. Messages arrive in the order sent. Waits while
   * the send queue is full (backpressure).
   * @throws TransportError when the link is closed or the frame too large.
   */
  send<M extends T[number]>(type: M, message: MessageOf<M>): Promise<void>;
  /**
   * Sends a request and resolves with the peer's reply.
   * @throws TransportError `timeout`, `cancelled`, `connection_lost`,
   *   `closed`, `remote_error` (the handler failed), `frame_error`.
   */
  call<M extends T[number]>(
    type: M,
    message: MessageOf<M>,
    options?: CallOptions,
  ): Promise<Envelope<T>>;
  /** Closes the link; calls in flight fail with `closed`. */
  close(): Promise<void>;
}

/** What a node does with what its peers send. */
export interface Handlers<T extends readonly AnyMessageType[]> {
  /** Called for each one-way message, in arrival order. */
  onMessage?(message: Envelope<T>, from: Transport<T>): void;
  /**
   * Answers a call. Throwing (or rejecting) fails the caller's call with
   * `remote_error` (or the thrown TransportError's code).
   */
  onRequest?(
    request: Envelope<T>,
    from: Transport<T>,
  ): Envelope<T> | Promise<Envelope<T>>;
  /** Told about errors that concern no caller (a throwing onMessage). */
  onError?(error: unknown, from: Transport<T>): void;
}
