import { CodecError } from "./codec_error.ts";
import { crc32c } from "./crc32c.ts";

/** kind(4 ASCII) version(u16) reserved(u16) payloadLength(u64), little-endian. */
export const ENVELOPE_HEADER_BYTES = 16;
/** CRC32C (u32) over header and payload. */
export const ENVELOPE_TRAILER_BYTES = 4;

function kindBytes(kind: string): Uint8Array {
  if (!/^[\x20-\x7e]{4}$/.test(kind)) {
    throw new RangeError(`envelope kind must be 4 ASCII chars: ${kind}`);
  }
  return new TextEncoder().encode(kind);
}

/**
 * The 16-byte header of a file envelope, for writers that stream the
 * payload: write this, the payload, then the CRC32C of everything before
 * (see {@link crc32c}'s running form) as a little-endian u32.
 */
export function envelopeHeader(
  kind: string,
  version: number,
  payloadLength: number,
): Uint8Array {
  if (!Number.isSafeInteger(payloadLength) || payloadLength < 0) {
    throw new RangeError(`bad payload length ${payloadLength}`);
  }
  if (!(version >= 0 && version <= 0xffff)) {
    throw new RangeError("envelope version must fit u16");
  }
  const out = new Uint8Array(ENVELOPE_HEADER_BYTES);
  const view = new DataView(out.buffer);
  out.set(kindBytes(kind));
  view.setUint16(4, version, true);
  view.setUint32(8, payloadLength % 2 ** 32, true);
  view.setUint32(12, Math.floor(payloadLength / 2 ** 32), true);
  return out;
}

/**
 * Wraps a whole file's payload: magic kind, format version, length and a
 * CRC32C, so a reader can tell a foreign, newer, torn or corrupted file from
 * a good one.
 *
 * @param kind four ASCII characters naming the file type (`"SNAP"`).
 */
export function sealEnvelope(
  kind: string,
  version: number,
  payload: Uint8Array,
): Uint8Array {
  const out = new Uint8Array(
    ENVELOPE_HEADER_BYTES + payload.length + ENVELOPE_TRAILER_BYTES,
  );
  out.set(envelopeHeader(kind, version, payload.length));
  out.set(payload, ENVELOPE_HEADER_BYTES);
  const end = ENVELOPE_HEADER_BYTES + payload.length;
  new DataView(out.buffer).setUint32(end, crc32c(out.subarray(0, end)), true);
  return out;
}

/** What {@link openEnvelope} found. */
export interface OpenedEnvelope {
  /** Format version written in the file. */
  version: number;
  /** The payload (a view into the input). */
  payload: Uint8Array;
}

/**
 * Checks and unwraps a file envelope.
 *
 * @param versions format versions this reader understands.
 * @throws CodecError `truncated`, `bad_magic`, `unsupported_version` or
 *   `checksum_mismatch`.
 */
export function openEnvelope(
  bytes: Uint8Array,
  kind: string,
  versions: readonly number[],
): OpenedEnvelope {
  if (bytes.length < ENVELOPE_HEADER_BYTES + ENVELOPE_TRAILER_BYTES) {
    throw new CodecError(
      "truncated",
      `file of ${bytes.length} bytes is shorter than an envelope`,
    );
  }
  const want = kindBytes(kind);
  for (let i = 0; i < 4; i++) {
    if (bytes[i] !== want[i]) {
      throw new CodecError("bad_magic", `file is not a ${kind} file`);
    }
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint16(4, true);
  if (!versions.includes(version)) {
    throw new CodecError(
      "unsupported_version",
      `${kind} format version ${version} is not supported (supported: ${
        versions.join(", ")
      })`,
    );
  }
  const length = view.getUint32(8, true) + view.getUint32(12, true) * 2 ** 32;
  const end = ENVELOPE_HEADER_BYTES + length;
  if (end + ENVELOPE_TRAILER_BYTES > bytes.length) {
    throw new CodecError(
      "truncated",
      `${kind} file announces ${length} payload bytes; only ${
        bytes.length - ENVELOPE_HEADER_BYTES - ENVELOPE_TRAILER_BYTES
      } are present`,
    );
  }
  if (end + ENVELOPE_TRAILER_BYTES < bytes.length) {
    throw new CodecError(
      "checksum_mismatch",
      `${kind} file has ${
        bytes.length - end - ENVELOPE_TRAILER_BYTES
      } bytes after its checksum`,
    );
  }
  if (crc32c(bytes.subarray(0, end)) !== view.getUint32(end, true)) {
    throw new CodecError("checksum_mismatch", `${kind} file checksum mismatch`);
  }
  return { version, payload: bytes.subarray(ENVELOPE_HEADER_BYTES, end) };
}
