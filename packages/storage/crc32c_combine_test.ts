import assert from "node:assert/strict";
import fc from "fast-check";
import { crc32c } from "@strata/codec";
import { crc32cCombine } from "./crc32c_combine.ts";

Deno.test("combining the CRCs of two parts equals the CRC of their concatenation", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 300 }),
      fc.uint8Array({ maxLength: 300 }),
      (a, b) => {
        const both = new Uint8Array(a.length + b.length);
        both.set(a);
        both.set(b, a.length);
        assert.equal(
          crc32cCombine(crc32c(a), crc32c(b), b.length),
          crc32c(both),
        );
      },
    ),
  );
});

/** zlib's `crc32_combine` as written (the operator squared up from one bit on every call): the reference. */
function combineBySquaring(crc1: number, crc2: number, len2: number): number {
  const times = (mat: Uint32Array, vec: number) => {
    let sum = 0;
    for (let i = 0; vec !== 0; vec >>>= 1, i++) if (vec & 1) sum ^= mat[i]!;
    return sum >>> 0;
  };
  const square = (out: Uint32Array, mat: Uint32Array) => {
    for (let n = 0; n < 32; n++) out[n] = times(mat, mat[n]!);
  };
  if (len2 <= 0) return crc1 >>> 0;
  const even = new Uint32Array(32);
  const odd = new Uint32Array(32);
  odd[0] = 0x82f63b78;
  for (let n = 1, row = 1; n < 32; n++, row = (row << 1) >>> 0) odd[n] = row;
  square(even, odd);
  square(odd, even);
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

Deno.test("combining with parts of any length (up to 2^53 bytes) agrees with zlib's method", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.oneof(
        fc.integer({ min: -5, max: 1 << 20 }),
        fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      ),
      (crc1, crc2, len) => {
        assert.equal(
          crc32cCombine(crc1, crc2, len),
          combineBySquaring(crc1, crc2, len),
        );
      },
    ),
    { numRuns: 500 },
  );
});

Deno.test("combining with a long part (a 64 KiB block and more) equals the CRC of the concatenation", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 100 }),
      fc.integer({ min: 60_000, max: 200_000 }),
      fc.integer({ min: 0, max: 255 }),
      (a, n, fill) => {
        const b = new Uint8Array(n).fill(fill);
        const both = new Uint8Array(a.length + n);
        both.set(a);
        both.set(b, a.length);
        assert.equal(crc32cCombine(crc32c(a), crc32c(b), n), crc32c(both));
      },
    ),
    { numRuns: 20 },
  );
});
