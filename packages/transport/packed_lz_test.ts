import assert from "node:assert/strict";
import fc from "fast-check";
import { decodeLz, encodeLz } from "./packed_lz.ts";
import { isTransportError } from "./transport_error.ts";

const runs = Deno.env.get("STRATA_LONG") === "1" ? 2000 : 200;

/** Bytes drawn from an alphabet of `size` symbols spread over 0–255. */
const fromAlphabet = (size: number, maxLength = 3000) =>
  fc.record({
    symbols: fc.uniqueArray(fc.nat({ max: 255 }), {
      minLength: size,
      maxLength: size,
    }),
    picks: fc.array(fc.nat({ max: size - 1 }), { maxLength }),
  }).map(({ symbols, picks }) => Uint8Array.from(picks, (i) => symbols[i]!));

/** Random text over the first `size` base64 characters, `n` long, seeded. */
function randomOver(size: number, n: number, seed: number): Uint8Array {
  const chars = new TextEncoder().encode(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/~",
  );
  let a = seed;
  const next = () => (a = (Math.imul(a, 1103515245) + 12345) >>> 0) >>> 8;
  return Uint8Array.from({ length: n }, () => chars[next() % size]!);
}

function roundTrip(src: Uint8Array): Uint8Array {
  const { bytes } = encodeLz(src);
  assert.deepEqual(decodeLz(bytes, 0, bytes.length), src);
  return bytes;
}

Deno.test("lz sections restore any bytes exactly", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 5000 }),
        fc.integer({ min: 1, max: 130 }).chain((size) => fromAlphabet(size)),
        // Runs of a small alphabet between random bytes.
        fc.array(
          fc.oneof(fc.uint8Array({ maxLength: 40 }), fromAlphabet(64, 300)),
          { maxLength: 12 },
        ).map((parts) => {
          const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
          parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
          return out;
        }),
      ),
      (src) => {
        roundTrip(src);
      },
    ),
    { numRuns: runs },
  );
});

Deno.test("alphabets of 1, 2, 63, 64 and 65 symbols round-trip, small ones packed to their width", () => {
  for (const size of [1, 2, 63, 64, 65]) {
    fc.assert(
      fc.property(fromAlphabet(size), (src) => {
        roundTrip(src);
      }),
      { numRuns: runs / 4 },
    );
  }
  // Uniform random text: ⌈log2 size⌉ bits a byte plus a few bytes of
  // header, alphabet and tokens (a run of one symbol is one match).
  const n = 4000;
  for (const [size, bits] of [[2, 1], [63, 6], [64, 6], [65, 7]]) {
    const bytes = roundTrip(randomOver(size!, n, size!));
    const limit = Math.ceil(n * bits! / 8) + 48;
    assert.ok(
      bytes.length <= limit,
      `${size} symbols: ${bytes.length} > ${limit}`,
    );
  }
  assert.ok(roundTrip(randomOver(1, n, 1)).length < 16);
});

Deno.test("malformed lz sections are typed errors or bytes, never a crash or hang", () => {
  fc.assert(
    fc.property(
      fromAlphabet(64, 600),
      fc.array(fc.record({ at: fc.nat(), value: fc.nat({ max: 255 }) }), {
        minLength: 1,
        maxLength: 4,
      }),
      fc.nat(),
      (src, flips, cut) => {
        const bytes = encodeLz(src).bytes.slice();
        for (const { at, value } of flips) bytes[at % bytes.length] = value;
        for (const b of [bytes, bytes.subarray(0, cut % (bytes.length + 1))]) {
          try {
            decodeLz(b, 0, b.length);
          } catch (e) {
            assert.ok(isTransportError(e, "protocol_error"), String(e));
          }
        }
      },
    ),
    { numRuns: runs },
  );
});
