/**
 * A tablet opened from another's shared SSTables: its clock starts above
 * the source's, so its writes win over the shared cells even when the
 * source's clock ran ahead of the wall clock.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openTablet } from "./tablet.ts";
import type { TableSchema } from "./types.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const SCHEMA: TableSchema = {
  name: "s",
  families: [{ name: "f", maxVersions: 1 }],
};
const cell = (v: string) => ({
  op: "put" as const,
  family: "f",
  qualifier: enc.encode("q"),
  value: enc.encode(v),
});

Deno.test("a half made of shared SSTables writes above its parent's clock", async () => {
  const root = await Deno.makeTempDir();
  const frozen = () => 1000; // a wall clock that stands still
  try {
    const parent = await openTablet(join(root, "p"), SCHEMA, {
      start: new Uint8Array(0),
      end: null,
    }, { clock: frozen, lsm: { sync: "never" } });
    let last = 0;
    for (let i = 0; i < 5; i++) {
      ({ timestamp: last } = await parent.mutateRow(enc.encode("a"), [
        cell(`p${i}`),
      ]));
    }
    await parent.mutateRow(enc.encode("z"), [cell("right side")]);
    assert.ok(last > 1000, "the parent's clock ran ahead");
    const half = { start: new Uint8Array(0), end: enc.encode("m") };
    const shared = await parent.shareRange!("p", half);
    await parent.close();
    const child = await openTablet(join(root, "c"), SCHEMA, half, {
      clock: frozen,
      lsm: { sync: "never" },
      shared: [shared],
    });
    try {
      assert.equal(
        dec.decode((await child.getRow(enc.encode("a")))!.cells[0]!.value),
        "p4",
      );
      const { timestamp: t } = await child.mutateRow(enc.encode("a"), [
        cell("child"),
      ]);
      assert.ok(t > last, `${t} > ${last}`);
      assert.equal(
        dec.decode((await child.getRow(enc.encode("a")))!.cells[0]!.value),
        "child",
      );
      const rows = [];
      for await (const r of child.scan()) rows.push(dec.decode(r.key));
      assert.deepEqual(rows, ["a"], "the other side is not seen");
    } finally {
      await child.close();
    }
    // Reopened without `shared`, it keeps its data and its clock.
    const again = await openTablet(join(root, "c"), SCHEMA, half, {
      clock: frozen,
      lsm: { sync: "never" },
    });
    try {
      const { timestamp: t } = await again.mutateRow(enc.encode("b"), [
        cell("x"),
      ]);
      assert.ok(t > last);
      assert.equal(
        dec.decode((await again.getRow(enc.encode("a")))!.cells[0]!.value),
        "child",
      );
    } finally {
      await again.close();
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
