import { crc32c } from "@strata/codec";

/**
 * On-disk framing of one log record, little-endian:
 *
 * | bytes | field                                          |
 * |-------|------------------------------------------------|
 * | 4     | payload length (u32)                           |
 * | 8     | log index (u64, two u32 halves)                |
 * | n     | payload                                        |
 * | 4     | CRC32C of everything before it in the record   |
 *
 * The index inside the record makes stale bytes from an older, truncated
 * history detectable, and the CRC covers the length so a torn header is
 * caught too.
 */
export const RECORD_HEADER_BYTES = 12;
/** Header plus trailing CRC: bytes a record adds to its payload. */
export const RECORD_OVERHEAD_BYTES = 16;

/**
 * Writes one record at `offset` of `out`; returns the offset past it.
 * Pass `view` (a DataView over all of `out`) when writing many records.
 */
export function writeRecord(
  out: Uint8Array,
  offset: number,
  index: number,
  payload: Uint8Array,
  view: DataView = new DataView(out.buffer, out.byteOffset, out.byteLength),
): number {
  view.setUint32(offset, payload.length, true);
  view.setUint32(offset + 4, index % 2 ** 32, true);
  view.setUint32(offset + 8, Math.floor(index / 2 ** 32), true);
  out.set(payload, offset + RECORD_HEADER_BYTES);
  const end = offset + RECORD_HEADER_BYTES + payload.length;
  view.setUint32(end, crc32c(out.subarray(offset, end)), true);
  return end + 4;
}

/** Why a scan stopped before the end of the bytes. */
export type ScanStop =
  /** The bytes end inside a record (a write that did not finish). */
  | "torn"
  /** A complete-looking record fails its checksum, length or index. */
  | "corrupt";

/** Result of {@link scanRecords}. */
export interface RecordScan {
  /** Byte offset of each good record, in order. */
  offsets: number[];
  /** Offset just past the last good record. */
  end: number;
  /** Why the scan stopped early, or null when every byte was consumed. */
  stop: ScanStop | null;
  /** Records that begin at or after `end` (best effort, by length fields). */
  droppedRecords: number;
}

/**
 * Walks the records of one segment's bytes, checking length, index
 * continuity (`firstIndex`, `firstIndex + 1`, …) and CRC, and stops at the
 * first record that fails. Pure: the caller decides whether a stop is a torn
 * tail to cut or corruption to report.
 *
 * @param maxRecordBytes payload lengths above this are treated as corrupt.
 */
export function scanRecords(
  bytes: Uint8Array,
  firstIndex: number,
  maxRecordBytes: number,
): RecordScan {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const offsets: number[] = [];
  let off = 0;
  let stop: ScanStop | null = null;
  while (off < bytes.length) {
    if (off + RECORD_OVERHEAD_BYTES > bytes.length) {
      stop = "torn";
      break;
    }
    const len = view.getUint32(off, true);
    if (len > maxRecordBytes) {
      stop = "corrupt";
      break;
    }
    const end = off + RECORD_HEADER_BYTES + len;
    if (end + 4 > bytes.length) {
      stop = "torn";
      break;
    }
    const index = view.getUint32(off + 4, true) +
      view.getUint32(off + 8, true) * 2 ** 32;
    if (
      index !== firstIndex + offsets.length ||
      crc32c(bytes.subarray(off, end)) !== view.getUint32(end, true)
    ) {
      stop = "corrupt";
      break;
    }
    offsets.push(off);
    off = end + 4;
  }
  let droppedRecords = 0;
  if (stop !== null) {
    // Count what the dropped region held, following length fields while
    // they stay plausible; the first (failed) record always counts.
    let p = off;
    while (p < bytes.length) {
      droppedRecords++;
      if (p + 4 > bytes.length) break;
      const len = view.getUint32(p, true);
      if (len > maxRecordBytes) break;
      p += RECORD_OVERHEAD_BYTES + len;
    }
  }
  return { offsets, end: off, stop, droppedRecords };
}

/** Sector size of the torn-write rule (etcd's WAL uses the same 512 bytes). */
const SECTOR_BYTES = 512;

/**
 * Tells a torn tail from a record damaged in place. A torn write is the
 * last thing written, so when an intact record with the next index
 * (`index`) starts after the bad record at `from`, the bad record did not
 * tear: a bit flipped in it (for example in its length field, which the
 * scan alone reads as "torn"). One exception, etcd's `isTornEntry`: the
 * page cache may write an unsynced batch's sectors out of order, so when a
 * whole aligned sector between the two is still zero (preallocated space
 * the crash never reached), the batch tore and nothing in it was
 * acknowledged.
 *
 * @returns the byte offset of the intact record that proves corruption, or
 *   null for a torn tail.
 */
export function intactRecordAfter(
  bytes: Uint8Array,
  from: number,
  index: number,
  maxRecordBytes: number,
): number | null {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lo = index % 2 ** 32;
  const hi = Math.floor(index / 2 ** 32);
  for (let p = from + 1; p + RECORD_OVERHEAD_BYTES <= bytes.length; p++) {
    if (
      view.getUint32(p + 4, true) !== lo || view.getUint32(p + 8, true) !== hi
    ) continue;
    const len = view.getUint32(p, true);
    const end = p + RECORD_HEADER_BYTES + len;
    if (
      len > maxRecordBytes || end + 4 > bytes.length ||
      crc32c(bytes.subarray(p, end)) !== view.getUint32(end, true)
    ) continue;
    for (
      let s = Math.ceil(from / SECTOR_BYTES) * SECTOR_BYTES;
      s + SECTOR_BYTES <= p;
      s += SECTOR_BYTES
    ) {
      if (bytes.subarray(s, s + SECTOR_BYTES).every((b) => b === 0)) {
        return null;
      }
    }
    return p;
  }
  return null;
}

/**
 * Decodes the records of a byte range read from a segment, verifying each.
 *
 * @returns payloads (views into `bytes`), or the position of the first bad
 *   record as `{ badAt }`.
 */
export function decodeRecords(
  bytes: Uint8Array,
  firstIndex: number,
  count: number,
): Uint8Array[] | { badAt: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Uint8Array[] = [];
  let off = 0;
  for (let i = 0; i < count; i++) {
    if (off + RECORD_OVERHEAD_BYTES > bytes.length) return { badAt: off };
    const len = view.getUint32(off, true);
    const end = off + RECORD_HEADER_BYTES + len;
    if (end + 4 > bytes.length) return { badAt: off };
    const index = view.getUint32(off + 4, true) +
      view.getUint32(off + 8, true) * 2 ** 32;
    if (
      index !== firstIndex + i ||
      crc32c(bytes.subarray(off, end)) !== view.getUint32(end, true)
    ) return { badAt: off };
    out.push(bytes.subarray(off + RECORD_HEADER_BYTES, end));
    off = end + 4;
  }
  return out;
}
