import assert from "node:assert/strict";
import fc from "fast-check";
import { encodeNeedle, needleBytes, parseNeedle } from "./needle.ts";

const header = fc.record({
  cookie: fc.maxSafeNat(),
  key: fc.maxSafeNat(),
  altKey: fc.integer({ min: 0, max: 0xffffffff }),
  flags: fc.constantFrom(0, 1),
});

const algorithm = fc.constantFrom("crc32c" as const, "crc32" as const);

Deno.test("needles round-trip and always end on an 8-byte boundary", () => {
  fc.assert(
    fc.property(
      header,
      fc.uint8Array({ maxLength: 200 }),
      algorithm,
      (h, data, alg) => {
        const bytes = encodeNeedle(h, data, alg);
        assert.equal(bytes.length % 8, 0);
        assert.equal(bytes.length, needleBytes(data.length));
        const p = parseNeedle(bytes, 0, 1 << 20, alg);
        assert.equal(p.kind, "ok");
        if (p.kind !== "ok") return;
        assert.deepEqual(p.header, { ...h, size: data.length });
        assert.deepEqual(
          bytes.subarray(p.dataOffset, p.dataOffset + data.length),
          data,
        );
      },
    ),
  );
});

Deno.test("any flipped bit outside the flags is detected", () => {
  fc.assert(
    fc.property(
      header,
      fc.uint8Array({ minLength: 1, maxLength: 100 }),
      fc.nat(),
      algorithm,
      (h, data, bitSeed, alg) => {
        const bytes = encodeNeedle(h, data, alg);
        const bit = bitSeed % (bytes.length * 8);
        const byte = bit >> 3;
        bytes[byte]! ^= 1 << (bit & 7);
        const p = parseNeedle(bytes, 0, 1 << 20, alg);
        if (byte === 24 && (bit & 7) === 0) {
          // The deleted flag itself: a valid needle with the other state.
          assert.equal(p.kind, "ok");
        } else {
          assert.notEqual(p.kind, "ok", `bit ${bit} went unnoticed`);
        }
      },
    ),
  );
});

Deno.test("a needle cut short asks for the bytes it needs", () => {
  const bytes = encodeNeedle(
    { cookie: 1, key: 2, altKey: 3, flags: 0 },
    new Uint8Array(50),
  );
  for (let cut = 0; cut < bytes.length; cut++) {
    const p = parseNeedle(bytes.subarray(0, cut), 0, 1 << 20);
    assert.equal(p.kind, "short", `cut ${cut}`);
  }
});
