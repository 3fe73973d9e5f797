import { encodeFrame, type MessageSet } from "@strata/codec";
import type { AnyMessageType, MessageOf } from "./message_kinds.ts";
import { asTransportError } from "./rpc_session.ts";

/**
 * A message encoded once into a whole frame (header, CBOR body, CRC) for
 * one message set, to be written as the same bytes to many connections of
 * that set with {@link RpcSession.sendPrepared}: a fan-out of one message
 * to N peers then costs one validation, one encoding and one checksum
 * instead of N. It always travels whole, never as a diff.
 */
export interface PreparedFrame {
  /** The fingerprint of the set it was encoded for. */
  readonly fingerprint: string;
  /** The message kind's id in that set. */
  readonly typeId: number;
  /** The message kind's name (for metrics). */
  readonly typeName: string;
  /** The frame's bytes; shared, never modified. */
  readonly frame: Uint8Array;
}

/**
 * Encodes `message` of kind `type` as a whole frame of `set`.
 * @throws TransportError `frame_error` (cause: CodecError) when the message
 *   does not match its schema or the frame exceeds `maxFrameBytes`.
 */
export function prepareFrame<
  T extends readonly AnyMessageType[],
  M extends T[number],
>(
  set: MessageSet<T>,
  type: M,
  message: MessageOf<M>,
  maxFrameBytes?: number,
): PreparedFrame {
  try {
    const typeId = set.typeId(type);
    const frame = encodeFrame(
      { type: typeId, flags: 0, payload: type.encode(message) },
      maxFrameBytes,
    );
    return {
      fingerprint: set.fingerprint,
      typeId,
      typeName: type.name,
      frame,
    };
  } catch (e) {
    throw asTransportError(e, `${type.name} frame`);
  }
}
