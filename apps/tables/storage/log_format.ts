import { crc32c } from "@strata/codec";

/** Bytes before an entry's payload: CRC32C, kind, epoch, index, length. */
export const ENTRY_HEADER_BYTES = 21;

/** One entry of a tablet commit log block. */
export type LogEntry =
  | {
    /** A write batch of the store, at `index`. */
    kind: "record";
    epoch: number;
    index: number;
    payload: Uint8Array;
  }
  | {
    /**
     * The owner of `epoch` writes from `index` on: records of lower epochs
     * at `index` or above are void (a fenced predecessor's late appends).
     */
    kind: "start";
    epoch: number;
    index: number;
  };

const KIND_RECORD = 1;
const KIND_START = 2;

/**
 * Encodes entries as one block (the unit of one GFS record append). Each
 * entry is `u32 CRC32C of the rest, u8 kind, u32 epoch, u64 index, u32
 * payload length, payload` (little endian), so a block read back is
 * checked entry by entry, whatever GFS's own framing let through.
 */
export function encodeBlock(entries: readonly LogEntry[]): Uint8Array {
  const out = new Uint8Array(blockBytes(entries));
  encodeBlockInto(out, 0, entries);
  return out;
}

/** Bytes {@link encodeBlock} writes for `entries`. */
export function blockBytes(entries: readonly LogEntry[]): number {
  let n = 0;
  for (const e of entries) {
    n += ENTRY_HEADER_BYTES + (e.kind === "record" ? e.payload.length : 0);
  }
  return n;
}

/**
 * Writes {@link encodeBlock}'s bytes for `entries` into `out` at `at`
 * (which has {@link blockBytes} of room there), so a larger frame holding
 * the block is built without a copy of it.
 * @returns the offset just past them.
 */
export function encodeBlockInto(
  out: Uint8Array,
  at: number,
  entries: readonly LogEntry[],
): number {
  const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
  let o = at;
  for (const e of entries) {
    const len = e.kind === "record" ? e.payload.length : 0;
    v.setUint8(o + 4, e.kind === "record" ? KIND_RECORD : KIND_START);
    v.setUint32(o + 5, e.epoch, true);
    v.setUint32(o + 9, e.index % 2 ** 32, true);
    v.setUint32(o + 13, Math.floor(e.index / 2 ** 32), true);
    v.setUint32(o + 17, len, true);
    if (e.kind === "record") out.set(e.payload, o + ENTRY_HEADER_BYTES);
    const end = o + ENTRY_HEADER_BYTES + len;
    v.setUint32(o, crc32c(out.subarray(o + 4, end)), true);
    o = end;
  }
  return o;
}

/**
 * Decodes a block of {@link encodeBlock}: its entries up to the first one
 * that does not check (bad CRC, unknown kind, overrun); `intact` says
 * whether the whole block decoded. Payloads are copies.
 */
export function decodeBlock(
  block: Uint8Array,
): { entries: LogEntry[]; intact: boolean } {
  const v = new DataView(block.buffer, block.byteOffset, block.byteLength);
  const entries: LogEntry[] = [];
  let o = 0;
  while (o < block.length) {
    if (o + ENTRY_HEADER_BYTES > block.length) break;
    const len = v.getUint32(o + 17, true);
    const end = o + ENTRY_HEADER_BYTES + len;
    if (end > block.length) break;
    if (crc32c(block.subarray(o + 4, end)) !== v.getUint32(o, true)) break;
    const kind = v.getUint8(o + 4);
    const epoch = v.getUint32(o + 5, true);
    const index = v.getUint32(o + 9, true) +
      v.getUint32(o + 13, true) * 2 ** 32;
    if (kind === KIND_RECORD) {
      entries.push({
        kind: "record",
        epoch,
        index,
        payload: block.slice(o + ENTRY_HEADER_BYTES, end),
      });
    } else if (kind === KIND_START && len === 0) {
      entries.push({ kind: "start", epoch, index });
    } else break;
    o = end;
  }
  return { entries, intact: o === block.length };
}
