import { decodeCbor, encodeFrame, isCodecError } from "@strata/codec";
import { z } from "zod";
import { TransportError, type TransportErrorCode } from "./transport_error.ts";
import { encodeWire } from "./wire_cbor.ts";

/**
 * Bits of a frame's `flags` byte as the transport uses them. A frame with
 * neither `request` nor `response` is a one-way message.
 */
export const FRAME_FLAGS = {
  /** The payload starts with a varint call id; the peer must answer. */
  request: 0x01,
  /** The payload starts with the varint id of the call it answers. */
  response: 0x02,
  /** The body is a diff against the previous message of its kind. */
  differential: 0x04,
  /** A response that reports a failure instead of a message (control type). */
  error: 0x08,
} as const;

/** Frame type 0 is the transport's own; message kinds start at 1. */
export const CONTROL_TYPE = 0;

/** The transport protocol version both peers must speak. */
export const PROTOCOL_VERSION = 1;

const codes = [
  "handshake_failed",
  "fingerprint_mismatch",
  "auth_failed",
  "timeout",
  "closed",
  "connection_lost",
  "protocol_error",
  "frame_error",
  "cancelled",
  "remote_error",
] as const satisfies readonly TransportErrorCode[];

const bytes = z.instanceof(Uint8Array);

/** Transport control messages, as positional CBOR arrays. */
export const ControlMessage = z.union([
  /**
   * [1, protocol, fingerprint, nonce, authRequired, differential?]: the last
   * names which kinds travel as diffs (see `differentialSignature`).
   */
  z.tuple([
    z.literal(1),
    z.number().int(),
    z.string().max(128),
    bytes.refine((b) => b.length >= 16 && b.length <= 64),
    z.boolean(),
  ]).rest(z.string().max(64)).refine((m) => m.length <= 6, {
    message: "a hello has at most six fields",
  }),
  /** [2, hmac] */
  z.tuple([z.literal(2), bytes.refine((b) => b.length === 32)]),
  /** [3, code, message]: the sender closes the connection. */
  z.tuple([z.literal(3), z.string().max(64), z.string().max(1024)]),
  /** [4, callId, code, message]: a call failed on the remote side. */
  z.tuple([
    z.literal(4),
    z.number().int().nonnegative(),
    z.string().max(64),
    z.string().max(4096),
  ]),
]);

/** A decoded control message. */
export type ControlMessage = z.infer<typeof ControlMessage>;

/** Encodes a control message as a whole frame. */
export function controlFrame(message: ControlMessage, flags = 0): Uint8Array {
  return encodeFrame({
    type: CONTROL_TYPE,
    flags,
    payload: encodeWire(message),
  });
}

/**
 * Decodes and validates a control frame's payload.
 * @throws TransportError `protocol_error` when it is not a control message.
 */
export function decodeControl(payload: Uint8Array): ControlMessage {
  let raw: unknown;
  try {
    raw = decodeCbor(payload);
  } catch (e) {
    if (isCodecError(e)) throw TransportError.fromCodec(e, "control frame");
    throw e;
  }
  const parsed = ControlMessage.safeParse(raw);
  if (!parsed.success) {
    throw new TransportError(
      "protocol_error",
      "the peer sent an invalid control frame",
    );
  }
  return parsed.data;
}

/** Reads a peer-supplied error code, mapping unknown ones to `remote_error`. */
export function peerCode(code: string): TransportErrorCode {
  return (codes as readonly string[]).includes(code)
    ? code as TransportErrorCode
    : "remote_error";
}
