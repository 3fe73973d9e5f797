/**
 * How long a split takes against the tablet's size, on local disk: the
 * split as the server makes it now (`TabletHost.copySplit`: flush, then
 * the halves name the parent's SSTables) against the copy it replaced
 * (each half gets the parent's cells through `Tablet.copyTo`, then is
 * flushed), from the same parent, in the same run.
 *
 *   deno run -A apps/tables/_split_probe.ts [MB ...]   (default 4 16 64)
 */
import { join } from "node:path";
import type { TableSchemaJson } from "./shared/wire.ts";
import type { TabletRecord } from "./shared/kv_layout.ts";
import { TabletHost } from "./server/tablet_host.ts";
import { openTabletStorage } from "./server/tablet_storage.ts";

const SCHEMA: TableSchemaJson = {
  name: "p",
  families: [{ name: "f", maxVersions: 1 }],
};
const enc = new TextEncoder();
const sizes = Deno.args.length > 0 ? Deno.args.map(Number) : [4, 16, 64];
const VALUE = 1000;

console.log(`load average: ${Deno.loadavg().join(" ")}`);
console.log("MB  rows    copy ms  shared ms  copy/shared");
for (const mb of sizes) {
  const root = await Deno.makeTempDir({ prefix: "split-probe-" });
  try {
    const open = openTabletStorage(root);
    const host = new TabletHost(open);
    const rows = Math.ceil(mb * 2 ** 20 / VALUE);
    const key = (i: number) => enc.encode(`row${String(i).padStart(9, "0")}`);
    const record: TabletRecord = {
      id: "p-0",
      table: "p",
      start: "",
      end: null,
      dir: "p/p-0",
      server: "s",
    };
    // Loaded without a sync per write, then flushed: SSTables, as a
    // tablet that has been running holds its data.
    const loader = await open(record.dir, SCHEMA, {
      start: new Uint8Array(0),
      end: null,
    }, { bulkLoad: true });
    const value = new Uint8Array(VALUE).fill(120);
    for (let i = 0; i < rows; i++) {
      await loader.mutateRow(key(i), [
        { op: "put", family: "f", qualifier: enc.encode("q"), value },
      ]);
    }
    await loader.flush();
    await loader.close();
    const t = await host.openTablet(record, SCHEMA, 1);
    await host.freeze(t);
    const mid = key(rows >> 1);

    let started = performance.now();
    for (
      const [dir, range] of [
        ["p/copy-l", { start: t.range.start, end: mid }],
        ["p/copy-r", { start: mid, end: null }],
      ] as const
    ) {
      const half = await open(dir, SCHEMA, range, { bulkLoad: true });
      await t.tablet.copyTo(half, range);
      await half.flush();
      await half.close();
    }
    const copyMs = performance.now() - started;

    started = performance.now();
    await host.copySplit(t, mid, "p/share-l", "p/share-r");
    const shareMs = performance.now() - started;
    await host.closeAll();
    // The shared halves hold every row.
    let seen = 0;
    for (const dir of ["p/share-l", "p/share-r"]) {
      const half = await open(dir, SCHEMA, {
        start: dir.endsWith("l") ? new Uint8Array(0) : mid,
        end: dir.endsWith("l") ? mid : null,
      });
      for await (const _ of half.scan({ versions: 1 })) seen++;
      await half.close();
    }
    if (seen !== rows) {
      throw new Error(`${seen} rows in the halves, not ${rows}`);
    }
    console.log(
      `${String(mb).padEnd(4)}${String(rows).padEnd(8)}${
        copyMs.toFixed(0).padStart(7)
      }  ${shareMs.toFixed(1).padStart(9)}  ${
        (copyMs / shareMs).toFixed(0).padStart(11)
      }`,
    );
  } finally {
    await Deno.remove(join(root), { recursive: true });
  }
}
