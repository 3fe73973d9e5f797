/**
 * @module
 * strata's codec: the one way bytes are made, for messages on the wire and
 * records on disk. Messages are zod schemas encoded as CBOR (cbor-x) with
 * schema-derived positional structures; frames carry them with a CRC32C;
 * file envelopes do the same for files.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { defineMessage, defineMessageSet, FrameDecoder } from "@strata/codec";
 *
 * const Ping = defineMessage("Ping", z.object({ seq: z.number().int() }));
 * const set = defineMessageSet([Ping]);
 * const bytes = set.encodeFrame(Ping, { seq: 1 });
 * const [frame] = new FrameDecoder().push(bytes);
 * console.log(set.decodeFrame(frame!)); // { type: "Ping", message: { seq: 1 } }
 * ```
 */
export {
  CodecError,
  type CodecErrorCode,
  isCodecError,
} from "./codec_error.ts";
export { crc32c, crc32cTable, nativeCrc32cAvailable } from "./crc32c.ts";
export {
  encodeVarint,
  MAX_VARINT,
  readVarint,
  varintLength,
  writeVarint,
  zigzagDecode,
  zigzagEncode,
} from "./varint.ts";
export {
  decodeCbor,
  type DecodedMessage,
  defineMessage,
  defineMessageSet,
  type MessageSet,
  type MessageType,
} from "./message.ts";
export { describeSchema, schemaFingerprint } from "./schema_fingerprint.ts";
export {
  DEFAULT_MAX_FRAME_BYTES,
  encodeFrame,
  encodeFrameOf,
  type Frame,
  FRAME_HEADER_BYTES,
  FRAME_TRAILER_BYTES,
  FRAME_VERSION,
} from "./frame.ts";
export { FrameDecoder, type FrameDecoderOptions } from "./frame_decoder.ts";
export {
  ENVELOPE_HEADER_BYTES,
  ENVELOPE_TRAILER_BYTES,
  envelopeHeader,
  type OpenedEnvelope,
  openEnvelope,
  sealEnvelope,
} from "./file_envelope.ts";
