import assert from "node:assert/strict";
import fc from "fast-check";
import { crc32c } from "@strata/codec";
import {
  blockBytes,
  encodeBlock,
  encodeBlockInto,
  type LogEntry,
} from "./log_format.ts";
import {
  decodeSections,
  encodeSections,
  type LogSection,
} from "./server_log_format.ts";

const entryArb: fc.Arbitrary<LogEntry> = fc.oneof(
  fc.record({
    kind: fc.constant("record" as const),
    epoch: fc.nat({ max: 2 ** 32 - 1 }),
    index: fc.maxSafeNat(),
    payload: fc.uint8Array({ maxLength: 300 }),
  }, { noNullPrototype: true }),
  fc.record({
    kind: fc.constant("start" as const),
    epoch: fc.nat({ max: 2 ** 32 - 1 }),
    index: fc.maxSafeNat(),
  }, { noNullPrototype: true }),
);
const sectionsArb: fc.Arbitrary<LogSection[]> = fc.array(
  fc.record({
    dir: fc.string({ minLength: 1, maxLength: 40 }),
    entries: fc.array(entryArb, { maxLength: 30 }),
  }, { noNullPrototype: true }),
  { maxLength: 4 },
);

/** The sections as they were written before: each body an encodeBlock, copied in. */
function reference(sections: readonly LogSection[]): Uint8Array {
  const parts: Uint8Array[] = sections.map((s) => {
    const name = new TextEncoder().encode(s.dir);
    const body = encodeBlock(s.entries);
    const out = new Uint8Array(6 + name.length + 4 + body.length);
    const v = new DataView(out.buffer);
    v.setUint16(4, name.length, true);
    out.set(name, 6);
    v.setUint32(6 + name.length, body.length, true);
    out.set(body, 10 + name.length);
    v.setUint32(0, crc32c(out.subarray(4)), true);
    return out;
  });
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return all;
}

Deno.test("encodeSections writes the bytes of its sections' encodeBlock bodies, and decodes back", () => {
  fc.assert(
    fc.property(sectionsArb, (sections) => {
      const block = encodeSections(sections);
      assert.deepEqual(block, reference(sections));
      assert.deepEqual(
        decodeSections(block),
        sections.map((s) => ({
          dir: s.dir,
          entries: s.entries.map((e) =>
            e.kind === "record" ? { ...e, payload: e.payload.slice() } : e
          ),
        })),
      );
    }),
  );
});

Deno.test("encodeBlockInto writes encodeBlock's bytes at any offset of any view", () => {
  fc.assert(
    fc.property(
      fc.array(entryArb, { maxLength: 20 }),
      fc.nat({ max: 64 }),
      fc.nat({ max: 64 }),
      (entries, lead, at) => {
        const backing = new Uint8Array(lead + at + blockBytes(entries) + 8)
          .fill(0xaa);
        const out = backing.subarray(lead);
        const end = encodeBlockInto(out, at, entries);
        assert.equal(end, at + blockBytes(entries));
        assert.deepEqual(out.subarray(at, end), encodeBlock(entries));
        assert.ok(out.subarray(0, at).every((b) => b === 0xaa));
        assert.ok(out.subarray(end).every((b) => b === 0xaa));
      },
    ),
  );
});
