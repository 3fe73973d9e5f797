import assert from "node:assert/strict";
import fc from "fast-check";
import { isCodecError } from "./codec_error.ts";
import { crc32c } from "./crc32c.ts";
import { encodeFrame, encodeFrameOf } from "./frame.ts";
import { FrameDecoder } from "./frame_decoder.ts";
import { encodeVarint } from "./varint.ts";

/** The frame layout written out by hand: magic, version, flags, type, length, payload, CRC32C. */
function reference(type: number, flags: number, payload: Uint8Array) {
  const out = new Uint8Array(10 + payload.length + 4);
  const v = new DataView(out.buffer);
  out.set([0x53, 0x54, 1, flags]);
  v.setUint16(4, type, true);
  v.setUint32(6, payload.length, true);
  out.set(payload, 10);
  v.setUint32(
    10 + payload.length,
    crc32c(out.subarray(0, 10 + payload.length)),
    true,
  );
  return out;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

Deno.test("encodeFrameOf writes the frame of varint(id) + body, as encodeFrame does, and decodes back", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 0xffff }),
      fc.integer({ min: 0, max: 0xff }),
      fc.option(fc.maxSafeNat(), { nil: undefined }),
      // Past the native CRC's threshold (512) too.
      fc.uint8Array({ maxLength: 3000 }),
      (type, flags, id, body) => {
        const prefix = id === undefined ? new Uint8Array(0) : encodeVarint(id);
        const payload = concat(prefix, body);
        const frame = encodeFrameOf(type, flags, id, body);
        assert.deepEqual(frame, reference(type, flags, payload));
        assert.deepEqual(encodeFrame({ type, flags, payload }), frame);
        const [decoded, ...rest] = new FrameDecoder().push(frame);
        assert.equal(rest.length, 0);
        assert.deepEqual(decoded, { type, flags, payload });
      },
    ),
  );
});

Deno.test("encodeFrameOf counts the id against the frame limit", () => {
  const body = new Uint8Array(100);
  // 2^21 - 1 takes 3 varint bytes, 2^21 takes 4.
  assert.equal(encodeFrameOf(1, 0, 2 ** 21 - 1, body, 103).length, 117);
  assert.throws(
    () => encodeFrameOf(1, 0, 2 ** 21, body, 103),
    (e) => isCodecError(e) && e.code === "too_large",
  );
  assert.throws(() => encodeFrameOf(0x10000, 0, 1, body), RangeError);
  assert.throws(() => encodeFrameOf(1, 0, -1, body), RangeError);
});
