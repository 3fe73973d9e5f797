import assert from "node:assert/strict";
import fc from "fast-check";
import { compareBytes } from "@strata/lsm";
import {
  cellKey,
  CLOCK_KEY,
  columnMarkerKey,
  decodeRow,
  escapeBody,
  familyMarkerKey,
  parseKey,
  ROW_EXTRACTOR,
  ROW_SPACE_START,
  rowMarkerKey,
  rowPrefix,
} from "./key_codec.ts";

const bytesArb = fc.uint8Array({ maxLength: 6 }).map((b) =>
  // Bias towards the escape byte and its neighbours.
  b.map((x) => [0, 1, 0xff, x][x % 4]!)
);
const rowArb = bytesArb.filter((b) => b.length > 0);
const famArb = fc.constantFrom("a", "ab", "b", "0", "Z_.-");
const tsArb = fc.oneof(
  fc.constantFrom(0, 1, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER),
  fc.nat(),
);
const cellArb = fc.tuple(rowArb, famArb, bytesArb, tsArb);
type CellT = [Uint8Array, string, Uint8Array, number];

function cmpTuple(a: CellT, b: CellT): number {
  return Math.sign(
    compareBytes(a[0], b[0]) || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0) ||
      compareBytes(a[2], b[2]) || b[3] - a[3],
  );
}

Deno.test("encoded cell keys sort by row bytes, family, qualifier, then newest timestamp first", () => {
  fc.assert(
    fc.property(cellArb, cellArb, (a, b) => {
      const ka = cellKey(...a);
      const kb = cellKey(...b);
      assert.equal(Math.sign(compareBytes(ka, kb)), cmpTuple(a, b));
    }),
    { numRuns: 2000 },
  );
});

Deno.test("cell and marker keys decode to what was encoded", () => {
  fc.assert(
    fc.property(cellArb, ([row, fam, q, ts]) => {
      const c = parseKey(cellKey(row, fam, q, ts));
      assert.deepEqual(
        [c.kind, c.family, c.qualifier, c.timestamp],
        ["cell", fam, q, ts],
      );
      assert.deepEqual(decodeRow(cellKey(row, fam, q, ts)), row);
      assert.equal(parseKey(rowMarkerKey(row)).kind, "row");
      assert.equal(parseKey(familyMarkerKey(row, fam)).kind, "family");
      const col = parseKey(columnMarkerKey(row, fam, q));
      assert.deepEqual([col.kind, col.family, col.qualifier], [
        "column",
        fam,
        q,
      ]);
    }),
    { numRuns: 1000 },
  );
});

Deno.test("a row's entries are contiguous, its markers first; row prefixes select exactly the rows with that prefix", () => {
  fc.assert(
    fc.property(cellArb, rowArb, bytesArb, ([row, fam, q, ts], other, p) => {
      const key = cellKey(row, fam, q, ts);
      const prefix = rowPrefix(row);
      assert.ok(compareBytes(key.subarray(0, prefix.length), prefix) === 0);
      assert.ok(compareBytes(rowMarkerKey(row), familyMarkerKey(row, fam)) < 0);
      assert.ok(
        compareBytes(familyMarkerKey(row, fam), columnMarkerKey(row, fam, q)) <
          0,
      );
      assert.ok(compareBytes(columnMarkerKey(row, fam, q), key) < 0);
      assert.ok(compareBytes(ROW_SPACE_START, rowMarkerKey(row)) <= 0);
      // Another row's entries are all on one side of this row's.
      const o = cellKey(other, fam, q, ts);
      if (compareBytes(other, row) !== 0) {
        assert.equal(
          Math.sign(compareBytes(o, key)),
          Math.sign(compareBytes(other, row)),
        );
      }
      const body = escapeBody(p);
      const hasEncPrefix = compareBytes(key.subarray(0, body.length), body) ===
        0;
      const hasRowPrefix = compareBytes(row.subarray(0, p.length), p) === 0 &&
        row.length >= p.length;
      assert.equal(hasEncPrefix, hasRowPrefix);
    }),
    { numRuns: 2000 },
  );
});

Deno.test("the row extractor gives every entry of a row its encoded row, and nothing for metadata keys or partial rows", () => {
  const { prefixOf } = ROW_EXTRACTOR;
  fc.assert(
    fc.property(cellArb, bytesArb, ([row, fam, q, ts], tail) => {
      const p = rowPrefix(row);
      for (
        const k of [
          p,
          rowMarkerKey(row),
          familyMarkerKey(row, fam),
          columnMarkerKey(row, fam, q),
          cellKey(row, fam, q, ts),
        ]
      ) assert.deepEqual(prefixOf(k), p);
      // The contract: any key starting with an extracted prefix has it.
      const longer = new Uint8Array(p.length + tail.length);
      longer.set(p);
      longer.set(tail, p.length);
      assert.deepEqual(prefixOf(longer), p);
      // A row-prefix scan's escaped bytes are no whole row.
      assert.equal(prefixOf(escapeBody(row)), undefined);
    }),
  );
  assert.equal(prefixOf(CLOCK_KEY), undefined);
  assert.equal(prefixOf(ROW_SPACE_START), undefined);
  assert.equal(prefixOf(new Uint8Array(0)), undefined);
});
