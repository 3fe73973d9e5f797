import assert from "node:assert/strict";
import fc from "fast-check";
import { crc32c } from "@strata/codec";
import { decodeBlock, encodeBlock, keyAt, valueAt } from "./block.ts";
import { isLsmError } from "./lsm_error.ts";
import type { Entry } from "./memtable.ts";

// Mostly short entries (one-byte lengths, read inline), some of 128 bytes
// or more (multi-byte varints).
const bytes = (short: number) =>
  fc.oneof(
    { weight: 4, arbitrary: fc.uint8Array({ maxLength: short }) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 120, maxLength: 300 }) },
  );
const entries = fc.uniqueArray(
  fc.record({
    key: bytes(24).filter((k) => k.length > 0),
    value: fc.option(bytes(40), { nil: null }),
  }),
  { minLength: 1, maxLength: 120, selector: (e) => e.key.join(",") },
).map((es) =>
  es.map((e): Entry => ({ key: e.key, value: e.value })).sort((a, b) => {
    const n = Math.min(a.key.length, b.key.length);
    for (let i = 0; i < n; i++) {
      if (a.key[i] !== b.key[i]) return a.key[i]! - b.key[i]!;
    }
    return a.key.length - b.key.length;
  })
);

function read(b: ReturnType<typeof decodeBlock>): Entry[] {
  return Array.from(
    { length: b.count },
    (_, i) => ({ key: keyAt(b, i), value: valueAt(b, i) }),
  );
}

Deno.test("decoded blocks keep their own offsets while later blocks are decoded (shared scratch and slabs)", () => {
  fc.assert(
    fc.property(fc.array(entries, { minLength: 2, maxLength: 8 }), (blocks) => {
      // Decoded one after another, as reads fill the block cache; each
      // earlier block still reads back exactly what was encoded.
      const decoded = blocks.map((es) => decodeBlock(encodeBlock(es), "t"));
      decoded.forEach((d, i) => {
        assert.equal(d.count, blocks[i]!.length);
        assert.deepEqual(read(d), blocks[i]);
      });
    }),
    { numRuns: 60 },
  );
});

Deno.test("a block cut short or with a length past its end is corrupt, not misread (fast-check)", () => {
  fc.assert(
    fc.property(entries, fc.nat(), (es, cut) => {
      const whole = encodeBlock(es);
      const n = whole.length - 4;
      // Drop bytes from the end of the entries, then give the rest a
      // valid checksum: only the structure check can refuse it.
      const m = cut % n;
      const body = whole.slice(0, m);
      const raw = new Uint8Array(m + 4);
      raw.set(body);
      new DataView(raw.buffer).setUint32(m, crc32c(body), true);
      if (m === 0) {
        assert.equal(decodeBlock(raw, "t").count, 0);
        return;
      }
      let ok: Entry[] | undefined;
      try {
        ok = read(decodeBlock(raw, "t"));
      } catch (e) {
        assert.ok(isLsmError(e, "corrupt"), String(e));
        return;
      }
      // A cut at an entry boundary decodes the entries before it.
      assert.deepEqual(ok, es.slice(0, ok.length));
    }),
    { numRuns: 200 },
  );
});
