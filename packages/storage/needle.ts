import { crc32 } from "node:zlib";
import { crc32c } from "@strata/codec";
import { crc32cCombine } from "./crc32c_combine.ts";

/**
 * One needle of a Haystack volume (Beaver et al., "Finding a needle in
 * Haystack", OSDI 2010), little-endian:
 *
 * | offset   | bytes | field                                   |
 * |----------|-------|-----------------------------------------|
 * | 0        | 4     | header magic                            |
 * | 4        | 8     | cookie (guards against guessed URLs)    |
 * | 12       | 8     | key                                     |
 * | 20       | 4     | alternate key                           |
 * | 24       | 1     | flags (bit 0: deleted)                  |
 * | 25       | 4     | data size                               |
 * | 29       | n     | data                                    |
 * | 29 + n   | 4     | footer magic                            |
 * | 33 + n   | 4     | checksum                                |
 * | 37 + n   | 0..7  | padding to a multiple of 8              |
 *
 * The checksum covers cookie, key, alternate key, size and data:
 * everything but the flags, which a delete overwrites in place (as in the
 * paper). A flags byte other than 0 or 1 counts as corruption. It is
 * CRC32C, or CRC-32 (IEEE) computed by node:zlib, which is hardware
 * accelerated and about ten times faster than the JavaScript CRC32C; the
 * volume records which one its needles use (see {@link NeedleChecksum}).
 */
export const NEEDLE_HEADER_MAGIC = 0x4c44454e; // "NEDL"
/** Footer magic. */
export const NEEDLE_FOOTER_MAGIC = 0x444e4546; // "FEND"
/** Fixed bytes of a needle around its data, before padding. */
export const NEEDLE_OVERHEAD_BYTES = 37;
/** Byte offset of the flags within a needle. */
export const NEEDLE_FLAGS_OFFSET = 24;
/** Flag bit: the needle was deleted. */
export const FLAG_DELETED = 1;

/**
 * Checksum of a volume's needles. `"crc32c"` is the project-wide checksum
 * (JavaScript, ~0.8 GB/s); `"crc32"` is zlib's CRC-32 (native, several
 * GB/s), the same error-detection class, used where a get's budget is one
 * read and the checksum would otherwise cost as much as the read.
 */
export type NeedleChecksum = "crc32c" | "crc32";

/** Bytes a needle with `size` data bytes occupies, padding included. */
export function needleBytes(size: number): number {
  return (NEEDLE_OVERHEAD_BYTES + size + 7) & ~7;
}

/** Fields of a needle apart from its data. */
export interface NeedleHeader {
  /** Random value a reader must present (safe integer). */
  cookie: number;
  /** The needle's key (safe integer). */
  key: number;
  /** Alternate key, u32 (Haystack: the photo size variant). */
  altKey: number;
  /** Flag bits ({@link FLAG_DELETED}). */
  flags: number;
  /** Data size, bytes. */
  size: number;
}

function setU64(view: DataView, off: number, n: number): void {
  view.setUint32(off, n % 2 ** 32, true);
  view.setUint32(off + 4, Math.floor(n / 2 ** 32), true);
}

function getU64(view: DataView, off: number): number {
  return view.getUint32(off, true) + view.getUint32(off + 4, true) * 2 ** 32;
}

function checksum(
  algorithm: NeedleChecksum,
  bytes: Uint8Array,
  off: number,
  size: number,
): number {
  const head = bytes.subarray(off + 4, off + NEEDLE_FLAGS_OFFSET);
  const rest = bytes.subarray(off + 25, off + 29 + size);
  if (algorithm === "crc32") return crc32(rest, crc32(head));
  return crc32c(rest, crc32c(head));
}

// crc32c(a ++ b) = shift(crc32c(a), b.length) ^ crc32c(b): the shift is a
// GF(2) matrix per length. Reads of fixed-size blocks use one or two
// lengths, so the few matrices are cached (as 32 columns each).
const shiftCache = new Map<number, Uint32Array>();

function crc32cShift(crc: number, len: number): number {
  let m = shiftCache.get(len);
  if (m === undefined) {
    m = new Uint32Array(32);
    // Column i: the shift of the bit pattern 1 << i (linear in the CRC).
    for (let i = 0; i < 32; i++) m[i] = crc32cCombine(2 ** i, 0, len);
    if (shiftCache.size >= 16) shiftCache.clear();
    shiftCache.set(len, m);
  }
  let out = 0;
  for (let i = 0, v = crc >>> 0; v !== 0; i++, v >>>= 1) {
    if (v & 1) out ^= m[i]!;
  }
  return out >>> 0;
}

/**
 * The CRC32C needle checksum of the needle at `off` from the CRC32C of its
 * data alone: a reader that checks the data against its own CRC anyway
 * verifies the needle without a second pass over the bytes.
 */
function checksumFromDataCrc(
  bytes: Uint8Array,
  off: number,
  size: number,
  dataCrc: number,
): number {
  const head = bytes.subarray(off + 4, off + NEEDLE_FLAGS_OFFSET);
  const sizeField = bytes.subarray(off + 25, off + 29);
  const prefix = crc32c(sizeField, crc32c(head));
  return (crc32cShift(prefix, size) ^ dataCrc) >>> 0;
}

/**
 * Writes a needle at `offset` of `out` (which must have
 * {@link needleBytes} free bytes there). @returns the offset past it.
 */
export function writeNeedle(
  out: Uint8Array,
  offset: number,
  header: Omit<NeedleHeader, "size">,
  data: Uint8Array,
  algorithm: NeedleChecksum = "crc32c",
): number {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  view.setUint32(offset, NEEDLE_HEADER_MAGIC, true);
  setU64(view, offset + 4, header.cookie);
  setU64(view, offset + 12, header.key);
  view.setUint32(offset + 20, header.altKey, true);
  out[offset + NEEDLE_FLAGS_OFFSET] = header.flags;
  view.setUint32(offset + 25, data.length, true);
  out.set(data, offset + 29);
  const f = offset + 29 + data.length;
  view.setUint32(f, NEEDLE_FOOTER_MAGIC, true);
  view.setUint32(f + 4, checksum(algorithm, out, offset, data.length), true);
  const end = offset + needleBytes(data.length);
  out.fill(0, f + 8, end);
  return end;
}

/** Encodes one needle into a fresh buffer. */
export function encodeNeedle(
  header: Omit<NeedleHeader, "size">,
  data: Uint8Array,
  algorithm: NeedleChecksum = "crc32c",
): Uint8Array {
  const out = new Uint8Array(needleBytes(data.length));
  writeNeedle(out, 0, header, data, algorithm);
  return out;
}

/** Outcome of {@link parseNeedle}. */
export type ParsedNeedle =
  | {
    kind: "ok";
    header: NeedleHeader;
    /** Offset of the data within the input. */
    dataOffset: number;
    /** Bytes the needle occupies, padding included. */
    total: number;
  }
  /** The input ends inside the needle; `need` bytes from `offset` would hold it. */
  | { kind: "short"; need: number }
  /** Magic, size, flags or checksum is wrong. */
  | { kind: "corrupt"; why: string };

/**
 * Parses and verifies the needle at `offset` of `bytes`. Pure.
 *
 * @param maxSize data sizes above this are treated as corruption.
 * @param algorithm the volume's checksum.
 * @param known the CRC32C of the first `size` data bytes, when the caller
 *   computed it already: a CRC32C needle of that size is then verified
 *   from it, without a second pass over the data.
 */
export function parseNeedle(
  bytes: Uint8Array,
  offset: number,
  maxSize: number,
  algorithm: NeedleChecksum = "crc32c",
  known?: { size: number; dataCrc: number },
): ParsedNeedle {
  if (offset + 29 > bytes.length) {
    return { kind: "short", need: needleBytes(0) };
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(offset, true) !== NEEDLE_HEADER_MAGIC) {
    return { kind: "corrupt", why: "bad header magic" };
  }
  const size = view.getUint32(offset + 25, true);
  if (size > maxSize) return { kind: "corrupt", why: `size ${size} too big` };
  const total = needleBytes(size);
  // The padding of the last needle is part of it: a file cut inside the
  // padding is torn too, so every needle ends on an 8-byte boundary.
  if (offset + total > bytes.length) return { kind: "short", need: total };
  const f = offset + 29 + size;
  if (view.getUint32(f, true) !== NEEDLE_FOOTER_MAGIC) {
    return { kind: "corrupt", why: "bad footer magic" };
  }
  const sum = known !== undefined && known.size === size &&
      algorithm === "crc32c"
    ? checksumFromDataCrc(bytes, offset, size, known.dataCrc)
    : checksum(algorithm, bytes, offset, size);
  if (view.getUint32(f + 4, true) !== sum) {
    return { kind: "corrupt", why: "checksum mismatch" };
  }
  const flags = bytes[offset + NEEDLE_FLAGS_OFFSET]!;
  if ((flags & ~FLAG_DELETED) !== 0) {
    return { kind: "corrupt", why: `unknown flags ${flags}` };
  }
  for (let p = f + 8; p < offset + total; p++) {
    if (bytes[p] !== 0) return { kind: "corrupt", why: "nonzero padding" };
  }
  return {
    kind: "ok",
    header: {
      cookie: getU64(view, offset + 4),
      key: getU64(view, offset + 12),
      altKey: view.getUint32(offset + 20, true),
      flags,
      size,
    },
    dataOffset: offset + 29,
    total,
  };
}
