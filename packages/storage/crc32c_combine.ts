/**
 * CRC32C of a concatenation from the CRCs of its parts, without the bytes:
 * `crc32cCombine(crc32c(a), crc32c(b), b.length) === crc32c(a ++ b)`.
 * The GF(2) matrix method of zlib's `crc32_combine`, for the Castagnoli
 * polynomial. A streaming writer uses it when a file's header (covered by
 * the checksum) is only known after the payload has been written.
 */
const POLY = 0x82f63b78;

function times(mat: Uint32Array, vec: number): number {
  let sum = 0;
  let i = 0;
  while (vec !== 0) {
    if (vec & 1) sum ^= mat[i]!;
    vec >>>= 1;
    i++;
  }
  return sum >>> 0;
}

function square(out: Uint32Array, mat: Uint32Array): void {
  for (let n = 0; n < 32; n++) out[n] = times(mat, mat[n]!);
}

/**
 * Operators that append 2^k zero bytes to a CRC (index k), each the
 * square of the one before, built on first use and kept: combining with a
 * part of any length then costs one matrix-vector product per set bit of
 * the length, instead of squaring the operator up from one bit on every
 * call (what zlib's `crc32_combine` does; in JavaScript that took ~50 µs
 * a call, and a chunkserver's fold, which verifies a partial block of a
 * new length each time, made 32 such calls: ~2 ms a fold).
 */
const zeroBytes: Uint32Array[] = [];

function zeroBytesOperator(k: number): Uint32Array {
  while (zeroBytes.length <= k) {
    const next = new Uint32Array(32);
    if (zeroBytes.length === 0) {
      // One zero bit, then squared three times: one zero byte.
      const bit = new Uint32Array(32);
      bit[0] = POLY;
      for (let n = 1; n < 32; n++) bit[n] = (1 << (n - 1)) >>> 0;
      const two = new Uint32Array(32);
      const four = new Uint32Array(32);
      square(two, bit);
      square(four, two);
      square(next, four);
    } else {
      square(next, zeroBytes[zeroBytes.length - 1]!);
    }
    zeroBytes.push(next);
  }
  return zeroBytes[k]!;
}

/**
 * @param crc1 CRC32C of the first part.
 * @param crc2 CRC32C of the second part.
 * @param len2 length of the second part in bytes (safe integer).
 * @returns CRC32C of both parts, concatenated.
 */
export function crc32cCombine(
  crc1: number,
  crc2: number,
  len2: number,
): number {
  if (len2 <= 0) return crc1 >>> 0;
  let c = crc1 >>> 0;
  // crc1 followed by len2 zero bytes: the operators of len2's set bits
  // (powers of one operator, so their order does not matter).
  for (let len = len2, k = 0; len > 0; len = Math.floor(len / 2), k++) {
    if (len % 2 === 1) c = times(zeroBytesOperator(k), c);
  }
  return (c ^ crc2) >>> 0;
}
