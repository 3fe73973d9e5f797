/**
 * Content-defined chunking with a gear rolling hash (the hash of FastCDC):
 * a chunk ends where the hash of the last 32 bytes has its top
 * {@link CHUNK_MASK_BITS} bits clear, so boundaries depend on content, not
 * on offsets. Two packets that differ only in a header of a different length
 * still cut their common tail at the same places, which fixed-size blocks
 * would not (every later block would be shifted). One pass, O(n).
 */

/** Smallest chunk (except a packet's last), in bytes. */
export const MIN_CHUNK_BYTES = 64;
/** Largest chunk, in bytes: bounds the work a missed boundary costs. */
export const MAX_CHUNK_BYTES = 1024;
/** Boundary bits: a cut is expected every 2^bits bytes after the minimum. */
export const CHUNK_MASK_BITS = 7;

const MASK = (0xffffffff << (32 - CHUNK_MASK_BITS)) >>> 0;
// The hash of 32 bytes fills all 32 bits, so hashing may start 32 bytes
// before the earliest allowed cut without changing any boundary.
const WINDOW = 32;

/** 256 fixed pseudo-random 32-bit values (xorshift32, seed fixed forever). */
const GEAR: Uint32Array = (() => {
  const table = new Uint32Array(256);
  let x = 0x9e3779b9;
  for (let i = 0; i < 256; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    table[i] = x >>> 0;
  }
  return table;
})();

/**
 * Cuts `data` into content-defined chunks.
 * @returns the end offset of each chunk, ascending; empty for empty input.
 */
export function chunkEnds(data: Uint8Array): number[] {
  const ends: number[] = [];
  const n = data.length;
  let start = 0;
  while (start < n) {
    const limit = Math.min(n, start + MAX_CHUNK_BYTES);
    const earliest = start + MIN_CHUNK_BYTES;
    if (earliest >= limit) {
      ends.push(limit);
      start = limit;
      continue;
    }
    let h = 0;
    let i = earliest - WINDOW;
    for (; i < earliest; i++) h = ((h << 1) + GEAR[data[i]!]!) | 0;
    let end = limit;
    for (; i < limit; i++) {
      h = ((h << 1) + GEAR[data[i]!]!) | 0;
      if ((h & MASK) === 0) {
        end = i + 1;
        break;
      }
    }
    ends.push(end);
    start = end;
  }
  return ends;
}
