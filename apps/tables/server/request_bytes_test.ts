import { deepStrictEqual, strictEqual, throws } from "node:assert/strict";
import fc from "fast-check";
import { EdgeError } from "@strata/edge";
import { LIMITS, toBytes } from "../shared/wire.ts";
import { requestBytes, utf8View } from "./request_bytes.ts";

const enc = new TextEncoder();
/** Strings of every kind: ASCII, BMP (lone surrogates too), astral, short and long. */
const strings = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.string({
    unit: fc.integer({ min: 0, max: 0xffff }).map((c) =>
      String.fromCharCode(c)
    ),
    maxLength: 40,
  }),
  fc.string({ unit: "grapheme-ascii", minLength: 30, maxLength: 300 }),
  fc.string({ unit: "binary", minLength: 5000, maxLength: 7000 }),
);

Deno.test("utf8View gives TextEncoder's bytes, and a view keeps them while later strings are carved", () => {
  fc.assert(
    fc.property(fc.array(strings, { maxLength: 60 }), (list) => {
      const views = list.map(utf8View);
      list.forEach((s, i) => deepStrictEqual(views[i], enc.encode(s)));
    }),
    { numRuns: 300 },
  );
});

Deno.test("requestBytes gives toBytes' bytes or the same refusal, in utf8 and base64", () => {
  const outcome = (f: () => Uint8Array) => {
    try {
      return { bytes: [...f()] };
    } catch (e) {
      if (!(e instanceof EdgeError)) throw e;
      return { code: e.code, message: e.message };
    }
  };
  fc.assert(
    fc.property(
      strings,
      fc.constantFrom("utf8" as const, "base64" as const),
      fc.constantFrom(
        ["row key", LIMITS.maxRowKeyBytes],
        ["qualifier", 3],
        ["value", 10],
        ["value", 6000],
      ),
      (s, encoding, [what, max]) =>
        deepStrictEqual(
          outcome(() => requestBytes(s, encoding, what, max)),
          outcome(() => toBytes(s, encoding, what, max)),
        ),
    ),
    { numRuns: 2000 },
  );
  throws(
    () => requestBytes("é".repeat(600), "utf8", "value", 1000),
    (e) =>
      e instanceof EdgeError && e.code === "too_large" &&
      e.message === "value is 1200 bytes; the limit is 1000",
  );
  strictEqual(requestBytes("", "utf8", "row key", 10).length, 0);
});
