import { crc32c } from "@strata/codec";

/**
 * First byte of an append record in the chunk store's journal. The other
 * journal records are CBOR maps (first byte 0xa1), so one byte tells them
 * apart.
 */
export const APPEND_TAG = 0x01;
/** Bytes an append record adds to its data. */
export const APPEND_HEADER_BYTES = 25;

/** Bytes appended to a chunk, as the journal holds them until folded into blocks. */
export interface AppendRecord {
  handle: number;
  version: number;
  /** Where the bytes start in the chunk (its length before them). */
  offset: number;
  /** CRC32C of `data`. */
  crc: number;
  data: Uint8Array;
}

/**
 * Encodes an append record, little-endian:
 *
 * | bytes | field                         |
 * |-------|-------------------------------|
 * | 1     | tag {@link APPEND_TAG}        |
 * | 8     | handle (u64, two u32 halves)  |
 * | 8     | version (u64, two u32 halves) |
 * | 4     | offset (u32)                  |
 * | 4     | CRC32C of the data            |
 * | n     | data                          |
 *
 * The journal frames every record with its own CRC32C (which catches a torn
 * or damaged header); the data's own CRC32C is what a read of the bytes
 * verifies for as long as they are not folded into a block.
 * @param crc the data's CRC32C when the caller has it already.
 */
export function encodeAppend(
  r: Omit<AppendRecord, "crc"> & { crc?: number },
): Uint8Array {
  const out = new Uint8Array(APPEND_HEADER_BYTES + r.data.length);
  const v = new DataView(out.buffer);
  out[0] = APPEND_TAG;
  v.setUint32(1, r.handle % 2 ** 32, true);
  v.setUint32(5, Math.floor(r.handle / 2 ** 32), true);
  v.setUint32(9, r.version % 2 ** 32, true);
  v.setUint32(13, Math.floor(r.version / 2 ** 32), true);
  v.setUint32(17, r.offset, true);
  v.setUint32(21, r.crc ?? crc32c(r.data), true);
  out.set(r.data, APPEND_HEADER_BYTES);
  return out;
}

/** True when a journal record is an append record (else it is CBOR). */
export function isAppendRecord(bytes: Uint8Array): boolean {
  return bytes.length > 0 && bytes[0] === APPEND_TAG;
}

/**
 * Decodes an append record; `data` is a view of `bytes`, verified against
 * its CRC32C.
 * @returns the record, or a reason it is not a valid one.
 */
export function decodeAppend(
  bytes: Uint8Array,
): AppendRecord | { error: string } {
  if (bytes.length < APPEND_HEADER_BYTES || bytes[0] !== APPEND_TAG) {
    return { error: "not an append record" };
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const handle = v.getUint32(1, true) + v.getUint32(5, true) * 2 ** 32;
  const version = v.getUint32(9, true) + v.getUint32(13, true) * 2 ** 32;
  if (!Number.isSafeInteger(handle) || !Number.isSafeInteger(version)) {
    return { error: "handle or version out of range" };
  }
  const offset = v.getUint32(17, true);
  const crc = v.getUint32(21, true);
  const data = bytes.subarray(APPEND_HEADER_BYTES);
  if (crc32c(data) !== crc) return { error: "data fails its CRC32C" };
  return { handle, version, offset, crc, data };
}
