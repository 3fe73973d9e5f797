/**
 * Presence bitmaps: bit `i` (least significant bit first within each byte)
 * says whether item `i` is present. Used by the differential encoding (which
 * fields changed).
 */

/** Bytes a bitmap of `n` items takes: ceil(n / 8). */
export function bitmapBytes(n: number): number {
  return (n + 7) >>> 3;
}

/** Sets bit `i` of `bitmap`. */
export function setBit(bitmap: Uint8Array, i: number): void {
  bitmap[i >>> 3]! |= 1 << (i & 7);
}

/** True when bit `i` of `bitmap` is set (false past its end). */
export function hasBit(bitmap: Uint8Array, i: number): boolean {
  return ((bitmap[i >>> 3] ?? 0) & (1 << (i & 7))) !== 0;
}

/** Number of set bits among the first `n`. */
export function countBits(bitmap: Uint8Array, n: number): number {
  let count = 0;
  for (let i = 0; i < n; i++) if (hasBit(bitmap, i)) count++;
  return count;
}

/** True when no bit at or past `n` is set (a canonical bitmap of `n` items). */
export function onlyFirstBits(bitmap: Uint8Array, n: number): boolean {
  const tail = n & 7;
  const last = bitmap.length - 1;
  if (last < 0) return true;
  return tail === 0 || ((bitmap[last]! >>> tail) === 0);
}
