import type { CodecError } from "@strata/codec";

/** Machine-readable reasons a transport operation can fail. */
export type TransportErrorCode =
  /** The peers could not agree (protocol version, handshake timeout, bad hello). */
  | "handshake_failed"
  /** The peers hold different message sets (schema fingerprints differ). */
  | "fingerprint_mismatch"
  /** The shared-secret challenge–response failed on one side. */
  | "auth_failed"
  /** The TLS handshake failed (no TLS on the other side, untrusted certificate). */
  | "tls_failed"
  /** A call got no answer in time, or a frame stayed incomplete too long. */
  | "timeout"
  /** The connection or transport was closed on purpose. */
  | "closed"
  /** The connection dropped (peer died, reset, end of stream). */
  | "connection_lost"
  /** The peer broke the protocol (diff without base, unknown call id…). */
  | "protocol_error"
  /** A frame could not be decoded or encoded; `cause` is the CodecError. */
  | "frame_error"
  /** The caller aborted the call through its AbortSignal. */
  | "cancelled"
  /** The remote handler failed or there was none; the message says which. */
  | "remote_error";

/**
 * The only error the transport throws or rejects with. Callers switch on
 * `code`, never on the message text.
 */
export class TransportError extends Error {
  /** Why the operation failed. */
  readonly code: TransportErrorCode;

  /** @param code why it failed; @param message a sentence a person can act on. */
  constructor(
    code: TransportErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "TransportError";
    this.code = code;
  }

  /** Wraps a codec failure as `frame_error`, keeping it as `cause`. */
  static fromCodec(e: CodecError, context: string): TransportError {
    return new TransportError(
      "frame_error",
      `${context}: ${e.code}: ${e.message}`,
      { cause: e },
    );
  }
}

/** True when `e` is a {@link TransportError}, optionally with the given code. */
export function isTransportError(
  e: unknown,
  code?: TransportErrorCode,
): e is TransportError {
  return e instanceof TransportError && (code === undefined || e.code === code);
}
