import assert from "node:assert/strict";
import fc from "fast-check";
import {
  APPEND_HEADER_BYTES,
  decodeAppend,
  encodeAppend,
  isAppendRecord,
} from "./append_record.ts";

const record = fc.record({
  handle: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
  version: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
  offset: fc.nat(2 ** 32 - 1),
  data: fc.uint8Array({ maxLength: 5000 }),
});

Deno.test("an append record decodes to what was encoded", () => {
  fc.assert(
    fc.property(record, (r) => {
      const bytes = encodeAppend(r);
      assert.equal(bytes.length, APPEND_HEADER_BYTES + r.data.length);
      assert.ok(isAppendRecord(bytes));
      const d = decodeAppend(bytes);
      assert.ok(!("error" in d), JSON.stringify(d));
      assert.equal(d.handle, r.handle);
      assert.equal(d.version, r.version);
      assert.equal(d.offset, r.offset);
      assert.deepEqual(d.data, r.data);
    }),
  );
});

Deno.test("a damaged data byte or checksum, or a cut record, is refused", () => {
  fc.assert(
    fc.property(
      record.filter((r) => r.data.length > 0),
      fc.nat(),
      fc.integer({ min: 1, max: 255 }),
      fc.boolean(),
      (r, at0, mask, cut) => {
        const bytes = encodeAppend(r);
        if (cut) {
          // A cut inside the header is not a record; inside the data, the
          // CRC32C no longer matches.
          const short = bytes.subarray(0, at0 % bytes.length);
          assert.ok("error" in decodeAppend(short));
          return;
        }
        // Bytes 21.. are the CRC32C and the data it covers (the header's
        // other fields are covered by the journal's own record CRC).
        const at = 21 + (at0 % (bytes.length - 21));
        bytes[at]! ^= mask;
        assert.ok("error" in decodeAppend(bytes));
      },
    ),
  );
});

Deno.test("a CBOR journal record is not taken for an append record", () => {
  // Every other journal record is a one-entry CBOR map.
  assert.ok(!isAppendRecord(new Uint8Array([0xa1, 0x61, 0x6d])));
  assert.ok(!isAppendRecord(new Uint8Array(0)));
});
