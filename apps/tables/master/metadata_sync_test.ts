import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { compareBytes } from "@strata/lsm";
import {
  inRoot,
  META_TABLE,
  metaLookupStart,
  metaRowKey,
  metaTableEnd,
  ROOT_END,
} from "../shared/metadata_layout.ts";
import { desiredMetaRows, planMetaSync } from "./metadata_sync.ts";
import type { KvState } from "./master_service.ts";

const enc = new TextEncoder();
const b64 = (s: string) => Buffer.from(s).toString("base64");

Deno.test("METADATA row keys: the first row after the lookup key holds the row", () => {
  // Tablets of "t": ["", "g"), ["g", "p"), ["p", +∞); of "t2": ["", +∞).
  const rows = [
    { key: metaRowKey("t", enc.encode("g")), id: "A" },
    { key: metaRowKey("t", enc.encode("p")), id: "B" },
    { key: metaRowKey("t", null), id: "C" },
    { key: metaRowKey("t2", null), id: "D" },
    { key: metaRowKey("s", null), id: "E" },
  ].sort((a, b) => compareBytes(a.key, b.key));
  const find = (table: string, row: string) => {
    const from = metaLookupStart(table, enc.encode(row));
    const end = metaTableEnd(table);
    return rows.find((r) =>
      compareBytes(r.key, from) >= 0 && compareBytes(r.key, end) < 0
    )?.id;
  };
  assert.equal(find("t", ""), "A");
  assert.equal(find("t", "f\xff"), "A");
  assert.equal(find("t", "g"), "B"); // the end key is exclusive
  assert.equal(find("t", "o"), "B");
  assert.equal(find("t", "p"), "C");
  assert.equal(find("t", "zzzz"), "C");
  assert.equal(find("t2", "a"), "D");
  assert.equal(find("s", "a"), "E");
  assert.equal(find("u", "a"), undefined);
  // METADATA's own rows sort before every user table's: in the root tablet.
  assert.ok(inRoot(metaRowKey(META_TABLE, null)));
  assert.ok(inRoot(metaLookupStart(META_TABLE, metaRowKey("A", null))));
  assert.ok(!inRoot(metaRowKey("A", new Uint8Array(0))));
  assert.ok(compareBytes(metaRowKey(META_TABLE, null), ROOT_END) < 0);
});

Deno.test("planMetaSync writes what differs and deletes what is gone", () => {
  const state: KvState = {
    schemas: new Map(),
    servers: new Map([["ts1", { id: "ts1", url: "http://a", session: 1 }]]),
    tablets: [
      {
        id: "M",
        table: META_TABLE,
        start: "",
        end: null,
        dir: "METADATA/M",
        server: "ts1",
      },
      {
        id: "M2",
        table: META_TABLE,
        start: Buffer.from(ROOT_END).toString("base64"),
        end: null,
        dir: "METADATA/M2",
        server: "ts1",
      },
      {
        id: "L",
        table: "t",
        start: "",
        end: b64("m"),
        dir: "t/L",
        server: "ts1",
      },
      {
        id: "R",
        table: "t",
        start: b64("m"),
        end: null,
        dir: "t/R",
        server: "ts2",
      },
    ],
  };
  const desired = desiredMetaRows(state);
  // The root tablet's location lives in kv only; M2's row is in the root.
  assert.equal(desired.size, 3);
  const m2 = [...desired.keys()].find((k) =>
    inRoot(new Uint8Array(Buffer.from(k, "hex")))
  );
  assert.equal(JSON.parse(desired.get(m2!)!).id, "M2");
  const right = JSON.parse(
    desired.get(Buffer.from(metaRowKey("t", null)).toString("hex"))!,
  );
  assert.equal(right.id, "R");
  assert.equal(right.url, null); // ts2 is not live
  assert.equal(
    JSON.parse(
      desired.get(
        Buffer.from(metaRowKey("t", enc.encode("m"))).toString("hex"),
      )!,
    ).url,
    "http://a",
  );
  // Before a split of R at "m": one row (R's old record under the same key).
  const present = new Map([
    [Buffer.from(metaRowKey("t", null)).toString("hex"), "old"],
    [Buffer.from(metaRowKey("gone", null)).toString("hex"), "x"],
  ]);
  const plan = planMetaSync(desired, present);
  assert.equal(plan.put.length, 3);
  assert.deepEqual(plan.del, [
    Buffer.from(metaRowKey("gone", null)).toString("hex"),
  ]);
  assert.deepEqual(planMetaSync(desired, desired), { put: [], del: [] });
});
