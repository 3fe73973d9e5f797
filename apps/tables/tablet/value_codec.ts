/**
 * The LSM values the tablet stores. Every entry carries the write
 * timestamp `T` of the mutation that wrote it (its sequence in the row's
 * history), which lets a deletion marker hide exactly the cells written
 * before it, whatever their (possibly explicit) timestamps:
 *
 * ```
 * cell    kind(1: 0 = value, 1 = deleted version) T(8) value bytes
 * marker  T(8)
 * ```
 */
import { copyInto } from "@strata/lsm";
import { tabletBytes } from "./byte_arena.ts";

/** A cell entry's header: what the version rules read. */
export interface CellHead {
  /** A deleted version (a tombstone that keeps its version slot). */
  deleted: boolean;
  /** Write timestamp of the mutation that wrote it. */
  seq: number;
}

/** A decoded cell entry. */
export interface CellValue extends CellHead {
  /** The value (a view into the stored bytes). */
  value: Uint8Array;
}

/** Where a cell entry's value starts. */
export const CELL_VALUE_AT = 9;

/** Writes `n` (< 2^53) big-endian at `at`, byte by byte (no DataView per call). */
function putU64(out: Uint8Array, at: number, n: number): void {
  putWords(out, at, Math.floor(n / 2 ** 32), n >>> 0);
}

/** Writes two 32-bit words big-endian at `at` (high word first). */
export function putWords(
  out: Uint8Array,
  at: number,
  hi: number,
  lo: number,
): void {
  out[at] = hi >>> 24;
  out[at + 1] = hi >>> 16;
  out[at + 2] = hi >>> 8;
  out[at + 3] = hi;
  out[at + 4] = lo >>> 24;
  out[at + 5] = lo >>> 16;
  out[at + 6] = lo >>> 8;
  out[at + 7] = lo;
}

function getU64(dv: DataView, at: number): number {
  return dv.getUint32(at) * 2 ** 32 + dv.getUint32(at + 4);
}

/** Encodes a cell entry (carved from {@link tabletBytes}). */
export function encodeCell(
  deleted: boolean,
  seq: number,
  value: Uint8Array,
): Uint8Array {
  const out = tabletBytes.alloc(9 + value.length);
  out[0] = deleted ? 1 : 0;
  putU64(out, 1, seq);
  copyInto(out, 9, value);
  return out;
}

/** Decodes a cell entry. @throws Error on malformed bytes. */
export function decodeCell(b: Uint8Array): CellValue {
  if (b.length < 9 || b[0]! > 1) throw new Error("malformed tablet cell");
  // Read in place (no DataView per cell).
  const hi = (b[1]! << 24 | b[2]! << 16 | b[3]! << 8 | b[4]!) >>> 0;
  const lo = (b[5]! << 24 | b[6]! << 16 | b[7]! << 8 | b[8]!) >>> 0;
  return { deleted: b[0] === 1, seq: hi * 2 ** 32 + lo, value: b.subarray(9) };
}

/**
 * Decodes a cell entry's header into `into` (no value view: a reader
 * that copies the value reads it from {@link CELL_VALUE_AT}).
 * @throws Error on malformed bytes.
 */
export function readCellHead(b: Uint8Array, into: CellHead): CellHead {
  if (b.length < 9 || b[0]! > 1) throw new Error("malformed tablet cell");
  const hi = (b[1]! << 24 | b[2]! << 16 | b[3]! << 8 | b[4]!) >>> 0;
  const lo = (b[5]! << 24 | b[6]! << 16 | b[7]! << 8 | b[8]!) >>> 0;
  into.deleted = b[0] === 1;
  into.seq = hi * 2 ** 32 + lo;
  return into;
}

/** Encodes a deletion marker (or the clock mark): its timestamp. */
export function encodeMarker(t: number): Uint8Array {
  const out = new Uint8Array(8);
  putU64(out, 0, t);
  return out;
}

/**
 * Decodes a deletion marker: its timestamp (the first of a chain).
 * @throws Error on malformed bytes.
 */
export function decodeMarker(b: Uint8Array): number {
  if (b.length < 8 || b.length % 8 !== 0) {
    throw new Error("malformed tablet marker");
  }
  return getU64(new DataView(b.buffer, b.byteOffset, 8), 0);
}

/**
 * Encodes a marker with the times of the markers it replaced, newest
 * first, kept while GC is held so a consistent read as of an earlier time
 * still finds the marker then in force.
 */
export function encodeMarkerChain(times: readonly number[]): Uint8Array {
  const out = new Uint8Array(8 * times.length);
  times.forEach((t, i) => putU64(out, 8 * i, t));
  return out;
}

/** Decodes a marker's chain of times, newest first. @throws Error on malformed bytes. */
export function decodeMarkerChain(b: Uint8Array): number[] {
  decodeMarker(b);
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  return Array.from({ length: b.length / 8 }, (_, i) => getU64(dv, 8 * i));
}
