/**
 * A replica's log on disk: what was appended (and awaited) is there after
 * a reopen, a torn last line is skipped, lines of one key merge, and the
 * file is rewritten to one line per key.
 */
import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { join } from "node:path";
import { CrdtLog } from "./crdt_log.ts";
import { applyOp, type CrdtValue, viewOf } from "./crdt_value.ts";

Deno.test("crdt log: appends survive a reopen; a torn line is skipped; one line per key after", async () => {
  const dir = await Deno.makeTempDir({ prefix: "crdt_log_" });
  try {
    const ts = () => ({ wall: 1, logical: 0, node: "a" });
    let values = new Map<string, CrdtValue>();
    const first = await CrdtLog.open(dir, () => values);
    values = first.values;
    let v: CrdtValue = {};
    for (let i = 0; i < 5; i++) {
      v = applyOp(v, { op: "incr", by: 2 }, "a", ts);
      values.set("k", v);
      await first.log.append([["k", v]]);
    }
    const s = applyOp({}, { op: "add", elements: ["x", "y"] }, "a", ts);
    values.set("s", s);
    // Concurrent appends share a write.
    await Promise.all([
      first.log.append([["s", s]]),
      first.log.append([["k", v]]),
    ]);
    await first.log.close();
    // A write cut short by kill -9.
    await Deno.writeTextFile(join(dir, "log.ndjson"), '{"key":"k","va', {
      append: true,
    });
    const again = await CrdtLog.open(dir, () => values);
    strictEqual(again.skipped, 1);
    deepStrictEqual(viewOf(again.values.get("k")!), { counter: 10 });
    deepStrictEqual(viewOf(again.values.get("s")!), { set: ["x", "y"] });
    await again.log.close();
    const lines = (await Deno.readTextFile(join(dir, "log.ndjson")))
      .split("\n").filter(Boolean);
    strictEqual(lines.length, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
