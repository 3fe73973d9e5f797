import { crc32c } from "@strata/codec";

/** Magic that starts every appended record ("GFSR"). */
export const RECORD_MAGIC = 0x47465352;
/** Bytes of a record's header: magic u32, length u32, CRC32C u32 (LE). */
export const RECORD_HEADER_BYTES = 12;

/**
 * Frames a record for record append. Appends are at-least-once and a
 * failed attempt can leave padding or a partial copy in a chunk, so
 * readers need to find records on their own: each carries a magic, its
 * length and a CRC32C of its bytes.
 */
export function frameRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(RECORD_HEADER_BYTES + data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, RECORD_MAGIC, true);
  v.setUint32(4, data.length, true);
  v.setUint32(8, crc32c(data), true);
  out.set(data, RECORD_HEADER_BYTES);
  return out;
}

/**
 * Finds the intact records in one chunk's bytes, skipping padding,
 * partial copies and garbage (anything whose header or CRC does not check).
 * Records never span chunks.
 */
export function* scanRecords(chunk: Uint8Array): Generator<Uint8Array> {
  const v = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  let p = 0;
  while (p + RECORD_HEADER_BYTES <= chunk.length) {
    if (v.getUint32(p, true) !== RECORD_MAGIC) {
      p++;
      continue;
    }
    const len = v.getUint32(p + 4, true);
    const end = p + RECORD_HEADER_BYTES + len;
    if (end <= chunk.length) {
      const data = chunk.subarray(p + RECORD_HEADER_BYTES, end);
      if (crc32c(data) === v.getUint32(p + 8, true)) {
        yield data;
        p = end;
        continue;
      }
    }
    p++;
  }
}
