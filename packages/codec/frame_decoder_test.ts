import assert from "node:assert/strict";
import fc from "fast-check";
import { isCodecError } from "./codec_error.ts";
import { encodeFrame, type Frame, FRAME_HEADER_BYTES } from "./frame.ts";
import { FrameDecoder } from "./frame_decoder.ts";

const frameArb = fc.record({
  type: fc.integer({ min: 0, max: 0xffff }),
  flags: fc.integer({ min: 0, max: 0xff }),
  payload: fc.uint8Array({ maxLength: 3000 }),
}, { noNullPrototype: true });

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Splits `bytes` at the given (sorted, deduplicated) cut points. */
function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort(
    (a, b) => a - b,
  );
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of [...points, bytes.length]) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  return out;
}

Deno.test("the decoder yields every frame once, whatever the split points", () => {
  fc.assert(
    fc.property(
      fc.array(frameArb, { maxLength: 8 }),
      fc.array(fc.nat(), { maxLength: 30 }),
      (frames, cuts) => {
        const stream = concat(frames.map((f) => encodeFrame(f)));
        const decoder = new FrameDecoder();
        const got: Frame[] = [];
        for (const piece of split(stream, cuts)) {
          got.push(...decoder.push(piece));
        }
        decoder.finish();
        assert.deepEqual(got, frames);
        assert.equal(decoder.buffered, 0);
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("the decoder accepts a stream one byte at a time", () => {
  const frames: Frame[] = [
    { type: 1, flags: 0, payload: new Uint8Array(0) },
    { type: 7, flags: 3, payload: new Uint8Array(300).fill(9) },
    { type: 65535, flags: 255, payload: new Uint8Array([1, 2, 3]) },
  ];
  const stream = concat(frames.map((f) => encodeFrame(f)));
  const decoder = new FrameDecoder();
  const got: Frame[] = [];
  for (let i = 0; i < stream.length; i++) {
    got.push(...decoder.push(stream.subarray(i, i + 1)));
  }
  assert.deepEqual(got, frames);
});

Deno.test("a length over the limit is rejected from the header, before the payload", () => {
  const decoder = new FrameDecoder({ maxFrameBytes: 100 });
  const frame = encodeFrame({
    type: 1,
    flags: 0,
    payload: new Uint8Array(101),
  });
  assert.throws(
    () => decoder.push(frame.subarray(0, FRAME_HEADER_BYTES)),
    (e) => isCodecError(e, "too_large"),
  );
  // The decoder stays failed.
  assert.throws(
    () => decoder.push(new Uint8Array(1)),
    (e) => isCodecError(e, "too_large"),
  );
  assert.throws(
    () => encodeFrame({ type: 1, flags: 0, payload: new Uint8Array(101) }, 100),
    (e) => isCodecError(e, "too_large"),
  );
});

Deno.test("wrong magic, unknown version and a flipped bit each get their own code", () => {
  const good = encodeFrame({
    type: 2,
    flags: 1,
    payload: new Uint8Array([5, 6, 7]),
  });
  const badMagic = good.slice();
  badMagic[0] = 0x47; // "GET " from an HTTP client
  assert.throws(
    () => new FrameDecoder().push(badMagic.subarray(0, 1)),
    (e) => isCodecError(e, "bad_magic"),
  );
  const badVersion = good.slice();
  badVersion[2] = 9;
  assert.throws(
    () => new FrameDecoder().push(badVersion),
    (e) => isCodecError(e, "unsupported_version"),
  );
  for (let i = 3; i < good.length; i++) {
    if (i >= 6 && i < 10) continue; // length bytes: covered by the fuzz test
    const flipped = good.slice();
    flipped[i] = flipped[i]! ^ 0x10;
    assert.throws(
      () => new FrameDecoder().push(flipped),
      (e) => isCodecError(e, "checksum_mismatch"),
      `flip at ${i}`,
    );
  }
});

Deno.test("a stream that ends inside a frame is truncated at finish", () => {
  const good = encodeFrame({
    type: 2,
    flags: 1,
    payload: new Uint8Array([5, 6, 7]),
  });
  const decoder = new FrameDecoder();
  assert.deepEqual(decoder.push(good.subarray(0, good.length - 1)), []);
  assert.equal(decoder.buffered, good.length - 1);
  assert.throws(() => decoder.finish(), (e) => isCodecError(e, "truncated"));
});
