import { crc32c, varintLength, writeVarint } from "@strata/codec";
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

/**
 * A checked data block: its bytes and, per entry, four offsets (key start,
 * key length, value start, value length or -1 for a tombstone) in one
 * Int32Array, so lookups compare keys in place without allocating.
 */
export interface DecodedBlock {
  data: Uint8Array;
  offs: Int32Array;
  count: number;
  /** Encoded size, charged to the block cache. */
  bytes: number;
}

/** Where a block's offsets are indexed before {@link carveOffsets} (grows). */
let scratch = new Int32Array(64 * 4);
/** Int32s per offsets slab: 16 KiB, the offsets of about 30 blocks. */
const OFFSETS_SLAB = 4096;
let slab = new Int32Array(0);
let slabUsed = 0;

/**
 * `n` Int32s for a block's offsets, a view into a shared 16 KiB slab:
 * allocating one ArrayBuffer per decoded block (a fresh, zeroed, off-heap
 * backing store) took 0.7–1.5 µs in a micro-run, a carve a few ns.
 * A cached block keeps its slab alive, so memory held can exceed the
 * cache's charge by up to a slab per cached block in the worst case (the
 * same trade as the file store's block slabs).
 */
function carveOffsets(n: number): Int32Array {
  if (n > OFFSETS_SLAB / 4) return new Int32Array(n);
  if (slabUsed + n > slab.length) {
    slab = new Int32Array(OFFSETS_SLAB);
    slabUsed = 0;
  }
  const out = slab.subarray(slabUsed, slabUsed + n);
  slabUsed += n;
  return out;
}

let next = 0;
/** Reads a varint at `o` (sets `next`); -1 when malformed or past `end`. */
function varint(b: Uint8Array, o: number, end: number): number {
  let v = 0;
  let scale = 1;
  for (let i = 0; i < 5; i++) {
    if (o + i >= end) return -1;
    const x = b[o + i]!;
    v += (x & 0x7f) * scale;
    if ((x & 0x80) === 0) {
      next = o + i + 1;
      return v;
    }
    scale *= 128;
  }
  return -1;
}

/**
 * Checks a block's CRC32C and indexes its entries. `raw` is the block and
 * its trailer; `where` names it in the error (a function: called only then).
 *
 * @throws LsmError `corrupt` on a checksum mismatch or bad structure.
 */
export function decodeBlock(
  raw: Uint8Array,
  where: string | (() => string),
): DecodedBlock {
  if (raw.length < BLOCK_TRAILER_BYTES) {
    throw corrupt(where, "block truncated");
  }
  const n = raw.length - BLOCK_TRAILER_BYTES;
  // Little-endian u32 read by hand: a DataView per block read is one
  // more object for the garbage collector.
  const want = (raw[n]! | raw[n + 1]! << 8 | raw[n + 2]! << 16 |
    raw[n + 3]! << 24) >>> 0;
  const body = raw.subarray(0, n);
  if (crc32c(body) !== want) {
    throw corrupt(where, "block checksum mismatch");
  }
  let offs = scratch;
  let count = 0;
  let o = 0;
  while (o < n) {
    const klen = varint(body, o, n);
    const ko = next;
    const tag = klen < 0 ? -1 : varint(body, ko + klen, n);
    const vo = next;
    if (tag < 0 || vo + (tag === 0 ? 0 : tag - 1) > n) {
      throw corrupt(where, "block structure invalid");
    }
    if ((count + 1) * 4 > offs.length) {
      const bigger = new Int32Array(offs.length * 2);
      bigger.set(offs);
      offs = scratch = bigger;
    }
    offs[count * 4] = ko;
    offs[count * 4 + 1] = klen;
    offs[count * 4 + 2] = vo;
    offs[count * 4 + 3] = tag - 1;
    count++;
    o = vo + (tag === 0 ? 0 : tag - 1);
  }
  const kept = carveOffsets(count * 4);
  kept.set(offs.subarray(0, count * 4));
  return { data: body, offs: kept, count, bytes: raw.length };
}

/** The `corrupt` error for a block `where` names (built only on failure: a read's name string costs an allocation per block). */
function corrupt(where: string | (() => string), what: string): LsmError {
  return new LsmError(
    "corrupt",
    `${typeof where === "string" ? where : where()}: ${what}`,
  );
}

/** Compares entry `i`'s key with `key` in place (negative, 0, positive). */
export function compareKeyAt(
  b: DecodedBlock,
  i: number,
  key: Uint8Array,
): number {
  const ko = b.offs[i * 4]!;
  const kl = b.offs[i * 4 + 1]!;
  const d = b.data;
  const n = kl < key.length ? kl : key.length;
  for (let j = 0; j < n; j++) {
    const x = d[ko + j]! - key[j]!;
    if (x !== 0) return x;
  }
  return kl - key.length;
}

/** Index of the first entry with key `>= key` (count when none). */
export function blockLowerBound(b: DecodedBlock, key: Uint8Array): number {
  let lo = 0;
  let hi = b.count;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareKeyAt(b, mid, key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Entry `i`'s key (a view into the block). */
export function keyAt(b: DecodedBlock, i: number): Uint8Array {
  const ko = b.offs[i * 4]!;
  return b.data.subarray(ko, ko + b.offs[i * 4 + 1]!);
}

/** Entry `i`'s value (a view into the block), `null` for a tombstone. */
export function valueAt(b: DecodedBlock, i: number): Value {
  const vl = b.offs[i * 4 + 3]!;
  if (vl < 0) return null;
  const vo = b.offs[i * 4 + 2]!;
  return b.data.subarray(vo, vo + vl);
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
