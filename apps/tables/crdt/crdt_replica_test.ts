/**
 * One replica's bookkeeping: which keys each peer still needs after a
 * local write, after a push (the sender is sent back what it lacked), while
 * a push is in flight and after it failed; an increment past 2^53 - 1 is
 * refused.
 */
import { deepStrictEqual, rejects, strictEqual } from "node:assert/strict";
import { HybridClock } from "./hlc.ts";
import { CrdtLog } from "./crdt_log.ts";
import { CrdtReplica } from "./crdt_replica.ts";
import { applyOp } from "./crdt_value.ts";

Deno.test("crdt replica: keys to push per peer; overflow refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "crdt_replica_" });
  try {
    const opened = await CrdtLog.open(dir, () => opened.values);
    const r = new CrdtReplica(
      "r",
      "i1",
      "a",
      new HybridClock({ node: "a" }),
      opened.values,
      opened.log,
      ["b", "c"],
    );
    await r.update("k", { op: "incr", by: 1 });
    deepStrictEqual(r.pending(), { b: 1, c: 1 });
    const keys = r.takeDirty("b", 10);
    deepStrictEqual(keys, ["k"]);
    deepStrictEqual(r.pending(), { b: 1, c: 1 }); // in flight still counts
    r.unsent("b", keys);
    deepStrictEqual(r.pending(), { b: 1, c: 1 });
    r.sent("b", r.takeDirty("b", 10));
    r.sent("c", r.takeDirty("c", 10));
    deepStrictEqual(r.pending(), { b: 0, c: 0 });
    // b pushes a key a lacks: c needs it, b does not.
    const fromB = applyOp({}, { op: "incr", by: 5 }, "b", () => {
      throw new Error("no register");
    });
    strictEqual(await r.merge("b", [{ key: "j", value: fromB }]), 1);
    deepStrictEqual(r.pending(), { b: 0, c: 1 });
    // b pushes an older k: nothing changes here, and b gets k back.
    strictEqual(await r.merge("b", [{ key: "k", value: {} }]), 0);
    deepStrictEqual(r.pending(), { b: 1, c: 1 });
    await r.update("big", { op: "incr", by: 2 ** 40 });
    r.values.set("big", {
      c: { p: { a: Number.MAX_SAFE_INTEGER - 1 }, n: {} },
    });
    await rejects(
      r.update("big", { op: "incr", by: 2 }),
      (e: Error & { code?: string }) => e.code === "bad_request",
    );
    await r.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
