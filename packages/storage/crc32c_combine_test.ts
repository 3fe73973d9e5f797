import assert from "node:assert/strict";
import fc from "fast-check";
import { crc32c } from "@strata/codec";
import { crc32cCombine } from "./crc32c_combine.ts";

Deno.test("combining the CRCs of two parts equals the CRC of their concatenation", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 300 }),
      fc.uint8Array({ maxLength: 300 }),
      (a, b) => {
        const both = new Uint8Array(a.length + b.length);
        both.set(a);
        both.set(b, a.length);
        assert.equal(
          crc32cCombine(crc32c(a), crc32c(b), b.length),
          crc32c(both),
        );
      },
    ),
  );
});
