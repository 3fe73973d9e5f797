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
  const even = new Uint32Array(32);
  const odd = new Uint32Array(32);
  odd[0] = POLY;
  let row = 1;
  for (let n = 1; n < 32; n++) {
    odd[n] = row;
    row = (row << 1) >>> 0;
  }
  square(even, odd); // operator for two zero bits
  square(odd, even); // four zero bits
  let c = crc1 >>> 0;
  let len = len2;
  do {
    square(even, odd);
    if (len % 2 === 1) c = times(even, c);
    len = Math.floor(len / 2);
    if (len === 0) break;
    square(odd, even);
    if (len % 2 === 1) c = times(odd, c);
    len = Math.floor(len / 2);
  } while (len !== 0);
  return (c ^ crc2) >>> 0;
}
