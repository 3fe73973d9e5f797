import { CodecError } from "./codec_error.ts";

/** Largest integer a varint here carries: 2^53 - 1, JavaScript's safe range. */
export const MAX_VARINT = Number.MAX_SAFE_INTEGER;

/** Bytes an unsigned LEB128 varint of `value` takes (1 to 8). */
export function varintLength(value: number): number {
  let n = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    n++;
  }
  return n;
}

/**
 * Writes `value` (a safe non-negative integer) as an unsigned LEB128 varint
 * into `out` at `offset`.
 *
 * @returns the offset just past the varint.
 * @throws RangeError when the value is negative, fractional or unsafe.
 */
export function writeVarint(
  out: Uint8Array,
  offset: number,
  value: number,
): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`varint needs a safe non-negative integer: ${value}`);
  }
  // Division keeps values above 2^32 exact where bit operators would wrap.
  while (value >= 0x80) {
    out[offset++] = (value % 128) | 0x80;
    value = Math.floor(value / 128);
  }
  out[offset++] = value;
  return offset;
}

/** Encodes one varint into a fresh array. */
export function encodeVarint(value: number): Uint8Array {
  const out = new Uint8Array(varintLength(value));
  writeVarint(out, 0, value);
  return out;
}

/**
 * Reads an unsigned varint at `offset`.
 *
 * @returns the value and the offset just past it.
 * @throws CodecError `truncated` when the bytes end inside the varint,
 *   `too_large` when it exceeds {@link MAX_VARINT} or uses more than 8 bytes.
 */
export function readVarint(
  bytes: Uint8Array,
  offset: number,
): { value: number; next: number } {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 8; i++) {
    if (offset + i >= bytes.length) {
      throw new CodecError("truncated", "the bytes end inside a varint");
    }
    const b = bytes[offset + i]!;
    value += (b & 0x7f) * scale;
    if ((b & 0x80) === 0) {
      if (value > MAX_VARINT) {
        throw new CodecError("too_large", "varint exceeds 2^53 - 1");
      }
      return { value, next: offset + i + 1 };
    }
    scale *= 128;
  }
  throw new CodecError("too_large", "varint longer than 8 bytes");
}

/** Maps a signed safe integer to an unsigned one: 0,-1,1,-2 → 0,1,2,3. */
export function zigzagEncode(n: number): number {
  return n >= 0 ? n * 2 : -n * 2 - 1;
}

/** Inverse of {@link zigzagEncode}. */
export function zigzagDecode(u: number): number {
  return u % 2 === 0 ? u / 2 : -(u + 1) / 2;
}
