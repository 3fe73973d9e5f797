import { deepStrictEqual, throws } from "node:assert/strict";
import fc from "fast-check";
import { EdgeError } from "@strata/edge";
import { LIMITS, toBytes, utf8Bytes } from "./wire.ts";

const enc = new TextEncoder();

Deno.test("utf8Bytes gives TextEncoder's bytes for any string (ASCII, other code points, lone surrogates, short and long)", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string({ maxLength: 40 }),
        fc.string({ unit: "binary", maxLength: 40 }),
        fc.string({
          unit: fc.integer({ min: 0, max: 0xffff }).map((c) =>
            String.fromCharCode(c)
          ),
          maxLength: 40,
        }),
        fc.string({ unit: "grapheme-ascii", minLength: 30, maxLength: 70 }),
      ),
      (s) => deepStrictEqual(utf8Bytes(s), enc.encode(s)),
    ),
    { numRuns: 2000 },
  );
});

Deno.test("toBytes in utf8 refuses a row key over the limit with the same message either way it encodes", () => {
  for (const s of ["k".repeat(LIMITS.maxRowKeyBytes + 1), "é".repeat(3000)]) {
    throws(
      () => toBytes(s, "utf8", "row key", LIMITS.maxRowKeyBytes),
      (e) =>
        e instanceof EdgeError && e.code === "bad_request" &&
        e.message ===
          `row key is ${
            enc.encode(s).length
          } bytes; the limit is ${LIMITS.maxRowKeyBytes}`,
    );
  }
});
