import assert from "node:assert/strict";
import fc from "fast-check";
import { crc32c, crc32cTable, nativeCrc32cAvailable } from "./crc32c.ts";

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

Deno.test("crc32c matches the RFC 3720 B.4 test vectors", () => {
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  const inc = Uint8Array.from({ length: 32 }, (_, i) => i);
  assert.equal(crc32c(inc), 0x46dd794e);
  const dec = Uint8Array.from({ length: 32 }, (_, i) => 31 - i);
  assert.equal(crc32c(dec), 0x113fdb5c);
  // The iSCSI SCSI Read (10) command PDU from the same appendix.
  const pdu = new Uint8Array(48);
  pdu.set([0x01, 0xc0], 0);
  pdu.set([0x14], 16);
  pdu.set([0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14], 20);
  pdu.set([0x00, 0x00, 0x00, 0x18], 28);
  pdu.set([0x28], 32);
  pdu.set([0x02], 40);
  assert.equal(crc32c(pdu), 0xd9963a56);
});

Deno.test("crc32c of the ASCII check string is 0xE3069283", () => {
  assert.equal(crc32c(new TextEncoder().encode("123456789")), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
});

Deno.test("crc32c continues across pieces exactly as over the whole", () => {
  fc.assert(
    fc.property(fc.uint8Array(), fc.uint8Array(), (a, b) => {
      assert.equal(crc32c(b, crc32c(a)), crc32c(concat(a, b)));
    }),
    { numRuns: 500 },
  );
});

Deno.test("crc32c detects every single-bit flip", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 1, maxLength: 200 }),
      fc.nat(),
      fc.integer({ min: 0, max: 7 }),
      (bytes, at, bit) => {
        const flipped = bytes.slice();
        const i = at % bytes.length;
        flipped[i] = flipped[i]! ^ (1 << bit);
        assert.notEqual(crc32c(flipped), crc32c(bytes));
      },
    ),
    { numRuns: 500 },
  );
});

Deno.test("the native and table implementations agree on every length and seed", () => {
  assert.ok(
    nativeCrc32cAvailable,
    "@node-rs/crc32 should load on this platform",
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 5000 }), fc.nat(), (bytes, seed) => {
      const s = seed >>> 0;
      assert.equal(crc32c(bytes, s), crc32cTable(bytes, s));
    }),
    { numRuns: 300 },
  );
});
