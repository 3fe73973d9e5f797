import { crc32c, readVarint, varintLength, writeVarint } from "@strata/codec";
import { compareBytes } from "./bytes.ts";
import { LsmError } from "./lsm_error.ts";
import type { Entry, Value } from "./memtable.ts";

/** Bytes after every block: CRC32C (u32 little-endian) of its contents. */
export const BLOCK_TRAILER_BYTES = 4;

/**
 * Encoded size of one entry in a data block: varint key length, key,
 * varint tag (0 = tombstone, else value length + 1), value.
 */
export function entryBytes(key: Uint8Array, value: Value): number {
  const tag = value === null ? 0 : value.length + 1;
  return varintLength(key.length) + key.length + varintLength(tag) +
    (value === null ? 0 : value.length);
}

/** Encodes entries (sorted) as one block followed by its CRC32C. */
export function encodeBlock(entries: readonly Entry[]): Uint8Array {
  let n = 0;
  for (const e of entries) n += entryBytes(e.key, e.value);
  const out = new Uint8Array(n + BLOCK_TRAILER_BYTES);
  let o = 0;
  for (const e of entries) {
    o = writeVarint(out, o, e.key.length);
    out.set(e.key, o);
    o += e.key.length;
    o = writeVarint(out, o, e.value === null ? 0 : e.value.length + 1);
    if (e.value !== null) {
      out.set(e.value, o);
      o += e.value.length;
    }
  }
  new DataView(out.buffer).setUint32(n, crc32c(out.subarray(0, n)), true);
  return out;
}

/** A decoded data block: parallel arrays, keys sorted. */
export interface DecodedBlock {
  keys: Uint8Array[];
  values: Value[];
  /** Encoded size, charged to the block cache. */
  bytes: number;
}

/**
 * Checks a block's CRC32C and decodes it. `raw` is the block and its
 * trailer; `where` names it in the error.
 *
 * @throws LsmError `corrupt` on a checksum mismatch or bad structure.
 */
export function decodeBlock(raw: Uint8Array, where: string): DecodedBlock {
  if (raw.length < BLOCK_TRAILER_BYTES) {
    throw new LsmError("corrupt", `${where}: block truncated`);
  }
  const n = raw.length - BLOCK_TRAILER_BYTES;
  const want = new DataView(raw.buffer, raw.byteOffset, raw.length)
    .getUint32(n, true);
  const body = raw.subarray(0, n);
  if (crc32c(body) !== want) {
    throw new LsmError("corrupt", `${where}: block checksum mismatch`);
  }
  const keys: Uint8Array[] = [];
  const values: Value[] = [];
  let o = 0;
  try {
    while (o < n) {
      const kv = readVarint(body, o);
      const klen = kv.value;
      const o1 = kv.next;
      const key = body.subarray(o1, o1 + klen);
      const tv = readVarint(body, o1 + klen);
      const tag = tv.value;
      const o2 = tv.next;
      if (o2 > n || (tag > 0 && o2 + tag - 1 > n)) throw new Error("overrun");
      keys.push(key);
      if (tag === 0) {
        values.push(null);
        o = o2;
      } else {
        values.push(body.subarray(o2, o2 + tag - 1));
        o = o2 + tag - 1;
      }
    }
  } catch (e) {
    throw new LsmError("corrupt", `${where}: block structure invalid`, {
      cause: e,
    });
  }
  return { keys, values, bytes: raw.length };
}

/** Index of the first key `>= key` in a sorted array (length when none). */
export function lowerBound(
  keys: readonly Uint8Array[],
  key: Uint8Array,
): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareBytes(keys[mid]!, key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
