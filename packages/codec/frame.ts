import { CodecError } from "./codec_error.ts";
import { crc32c } from "./crc32c.ts";
import { varintLength, writeVarint } from "./varint.ts";

/** First two bytes of every frame: ASCII "ST". */
export const FRAME_MAGIC_0 = 0x53;
/** Second magic byte. */
export const FRAME_MAGIC_1 = 0x54;
/** The frame format version this code writes and reads. */
export const FRAME_VERSION = 1;
/** magic(2) version(1) flags(1) type(u16) length(u32), little-endian. */
export const FRAME_HEADER_BYTES = 10;
/** CRC32C (u32) over header and payload. */
export const FRAME_TRAILER_BYTES = 4;
/** Default ceiling on a frame's payload: 16 MiB. */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;

/** One decoded frame. */
export interface Frame {
  /** Message type id (1..65535) within the peers' message set. */
  type: number;
  /** Eight bits the layer above uses (differential, compressed, response…). */
  flags: number;
  /** The message bytes. */
  payload: Uint8Array;
}

/**
 * Encodes a frame: header, payload, then a CRC32C of both.
 *
 * @throws CodecError `too_large` when the payload exceeds `maxFrameBytes`.
 */
export function encodeFrame(
  frame: Frame,
  maxFrameBytes = DEFAULT_MAX_FRAME_BYTES,
): Uint8Array {
  return encodeFrameOf(
    frame.type,
    frame.flags,
    undefined,
    frame.payload,
    maxFrameBytes,
  );
}

/**
 * Encodes a frame whose payload is `id` as a varint (when given: a call's
 * id before its message) followed by `body`: the same bytes as
 * {@link encodeFrame} of that payload, in one allocation and one copy of
 * `body` (a large message is not copied twice to be framed).
 *
 * @throws CodecError `too_large` when the payload exceeds `maxFrameBytes`.
 */
export function encodeFrameOf(
  type: number,
  flags: number,
  id: number | undefined,
  body: Uint8Array,
  maxFrameBytes = DEFAULT_MAX_FRAME_BYTES,
): Uint8Array {
  const idBytes = id === undefined ? 0 : varintLength(id);
  const length = idBytes + body.length;
  if (length > maxFrameBytes) {
    throw new CodecError(
      "too_large",
      `frame payload of ${length} bytes exceeds ${maxFrameBytes}`,
    );
  }
  if (!(type >= 0 && type <= 0xffff) || !(flags >= 0 && flags <= 0xff)) {
    throw new RangeError("frame type must fit u16 and flags u8");
  }
  const out = new Uint8Array(
    FRAME_HEADER_BYTES + length + FRAME_TRAILER_BYTES,
  );
  const view = new DataView(out.buffer);
  out[0] = FRAME_MAGIC_0;
  out[1] = FRAME_MAGIC_1;
  out[2] = FRAME_VERSION;
  out[3] = flags;
  view.setUint16(4, type, true);
  view.setUint32(6, length, true);
  if (id !== undefined) writeVarint(out, FRAME_HEADER_BYTES, id);
  out.set(body, FRAME_HEADER_BYTES + idBytes);
  const end = FRAME_HEADER_BYTES + length;
  view.setUint32(end, crc32c(out.subarray(0, end)), true);
  return out;
}
