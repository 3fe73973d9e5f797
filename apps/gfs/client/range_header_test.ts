import assert from "node:assert/strict";
import { isGfsError } from "../shared/gfs_error.ts";
import { parseRange } from "./range_header.ts";

Deno.test("Range headers parse to offset and length, clipped to the file", () => {
  assert.equal(parseRange(undefined, 100), null);
  assert.deepEqual(parseRange("bytes=0-9", 100), { offset: 0, length: 10 });
  assert.deepEqual(parseRange("bytes=90-", 100), { offset: 90, length: 10 });
  assert.deepEqual(parseRange("bytes=95-500", 100), { offset: 95, length: 5 });
  assert.deepEqual(parseRange("bytes=-5", 100), { offset: 95, length: 5 });
  assert.deepEqual(parseRange("bytes=-500", 100), { offset: 0, length: 100 });
});

Deno.test("malformed ranges are bad_request and ranges past the end are not satisfiable", () => {
  for (
    const bad of [
      "bytes=",
      "bytes=-",
      "bytes=5-2",
      "items=0-1",
      "bytes=a-b",
      "bytes=0-1,3-4",
    ]
  ) {
    assert.throws(
      () => parseRange(bad, 100),
      (e) => isGfsError(e, "bad_request"),
      bad,
    );
  }
  assert.throws(
    () => parseRange("bytes=100-", 100),
    (e) => isGfsError(e, "range_not_satisfiable"),
  );
});
