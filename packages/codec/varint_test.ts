import assert from "node:assert/strict";
import fc from "fast-check";
import { isCodecError } from "./codec_error.ts";
import {
  encodeVarint,
  readVarint,
  varintLength,
  zigzagDecode,
  zigzagEncode,
} from "./varint.ts";

Deno.test("varints round-trip every safe non-negative integer", () => {
  fc.assert(
    fc.property(fc.maxSafeNat(), (n) => {
      const bytes = encodeVarint(n);
      assert.equal(bytes.length, varintLength(n));
      assert.deepEqual(readVarint(bytes, 0), { value: n, next: bytes.length });
    }),
    { numRuns: 2000 },
  );
});

Deno.test("varints use the LEB128 layout", () => {
  assert.deepEqual([...encodeVarint(0)], [0]);
  assert.deepEqual([...encodeVarint(127)], [127]);
  assert.deepEqual([...encodeVarint(128)], [0x80, 0x01]);
  assert.deepEqual([...encodeVarint(300)], [0xac, 0x02]);
});

Deno.test("a varint cut short is reported as truncated", () => {
  const bytes = encodeVarint(2 ** 40);
  for (let cut = 0; cut < bytes.length; cut++) {
    assert.throws(
      () => readVarint(bytes.subarray(0, cut), 0),
      (e) => isCodecError(e, "truncated"),
    );
  }
});

Deno.test("an overlong varint is too_large, never a wrong number", () => {
  const nine = new Uint8Array(9).fill(0xff);
  assert.throws(() => readVarint(nine, 0), (e) => isCodecError(e, "too_large"));
  const big = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
  assert.throws(() => readVarint(big, 0), (e) => isCodecError(e, "too_large"));
});

Deno.test("zigzag round-trips safe integers and keeps small ones small", () => {
  assert.deepEqual([0, -1, 1, -2, 2].map(zigzagEncode), [0, 1, 2, 3, 4]);
  fc.assert(
    fc.property(
      fc.integer({
        min: -(2 ** 52),
        max: 2 ** 52 - 1,
      }),
      (n) => assert.equal(zigzagDecode(zigzagEncode(n)), n),
    ),
    { numRuns: 2000 },
  );
});
