import assert from "node:assert/strict";
import fc from "fast-check";
import { lowerBound } from "./block.ts";
import { BlockIndex } from "./block_index.ts";
import { compareBytes } from "./bytes.ts";

/** Bytes from a small alphabet (0x00, 0x01, 0xfe, 0xff and two letters), so keys tie, nest and differ late. */
const byte = fc.constantFrom(0x00, 0x01, 0x61, 0x62, 0xfe, 0xff);
const tail = fc.array(byte, { maxLength: 12 });

/** Sorted keys sharing a prefix (as a table's do), with duplicates and keys that are prefixes of others. */
const index = fc.record({
  prefix: fc.array(byte, { maxLength: 10 }),
  tails: fc.array(tail, { maxLength: 60 }),
}).map(({ prefix, tails }) =>
  tails.map((t) => Uint8Array.from([...prefix, ...t])).sort(compareBytes)
);

/** Sought keys: around the prefix (shorter, equal, diverging) and past it. */
const probe = fc.oneof(
  fc.array(byte, { maxLength: 24 }).map((b) => Uint8Array.from(b)),
  fc.record({ cut: fc.nat(24), t: tail }),
);

Deno.test("BlockIndex.lowerBound matches a byte-wise binary search (fast-check)", () => {
  fc.assert(
    fc.property(index, fc.array(probe, { minLength: 1, maxLength: 20 }), (
      keys,
      probes,
    ) => {
      const ix = new BlockIndex(keys);
      const sought = probes.map((p) => {
        if (p instanceof Uint8Array) return p;
        // A key sharing part of a stored key, then its own bytes.
        const base = keys[p.cut % Math.max(keys.length, 1)] ??
          new Uint8Array(0);
        return Uint8Array.from([...base.subarray(0, p.cut), ...p.t]);
      });
      // Every stored key is sought too (ties with the numbers' heads).
      for (const k of [...sought, ...keys]) {
        assert.equal(ix.lowerBound(k), lowerBound(keys, k));
      }
    }),
    { numRuns: 300 },
  );
});

Deno.test("BlockIndex: keys past the 6 bytes kept as a number are compared by their bytes", () => {
  const enc = new TextEncoder();
  const keys = ["row00000001a", "row00000001b", "row000000010", "row0000000100"]
    .map((s) => enc.encode(s)).sort(compareBytes);
  const ix = new BlockIndex(keys);
  for (
    const s of [
      "row",
      "row0",
      "row00000001",
      "row00000001a",
      "row00000001aa",
      "row0000000100",
      "row00000002",
      "rox",
      "a",
    ]
  ) {
    const k = enc.encode(s);
    assert.equal(ix.lowerBound(k), lowerBound(keys, k), s);
  }
  assert.equal(new BlockIndex([]).lowerBound(enc.encode("x")), 0);
});
