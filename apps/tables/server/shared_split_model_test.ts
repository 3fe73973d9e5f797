/**
 * Splits and merges that share SSTables instead of copying them, against
 * a plain map: random puts and row deletes, splits and merges through
 * {@link TabletHost} (committed, or abandoned as by a crash before the
 * master's commit), compactions, reopens (the server restarting: close
 * does not flush, the commit log is replayed) and sweeps of retired
 * stores (some cut short, as by a crash). After every step each live
 * tablet reads exactly the model's rows of its range, and every file a
 * live tablet's manifest names exists.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import fc from "fast-check";
import { compareBytes, parseManifest } from "@strata/lsm";
import { sweepRetired } from "../storage/mod.ts";
import type { TabletRecord } from "../shared/kv_layout.ts";
import { b64, type TableSchemaJson } from "../shared/wire.ts";
import { type OpenTablet, TabletHost } from "./tablet_host.ts";
import { localStoreFolder, openTabletStorage } from "./tablet_storage.ts";

const LONG = Deno.env.get("STRATA_LONG") === "1";
const SCHEMA: TableSchemaJson = {
  name: "m",
  families: [{ name: "f", maxVersions: 1 }],
};
const enc = new TextEncoder();
const dec = new TextDecoder();
const ROWS = Array.from(
  { length: 24 },
  (_, i) => `r${String(i).padStart(2, "0")}`,
);
const F = { family: "f", qualifier: enc.encode("q") };

type Op =
  | { op: "put"; row: number; value: number }
  | { op: "delete"; row: number }
  | { op: "split"; tablet: number; at: number; commit: boolean }
  | { op: "merge"; tablet: number; commit: boolean }
  | { op: "compact"; tablet: number }
  | { op: "reopen" }
  | { op: "sweep"; cut: number };

const rowIx = fc.nat({ max: ROWS.length - 1 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant("put" as const),
      row: rowIx,
      value: fc.nat(999),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant("delete" as const), row: rowIx }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("split" as const),
      tablet: fc.nat(7),
      at: rowIx,
      commit: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("merge" as const),
      tablet: fc.nat(7),
      commit: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("compact" as const),
      tablet: fc.nat(7),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ op: "reopen" as const }) },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant("sweep" as const), cut: fc.nat(3) }),
  },
);

Deno.test("shared-SSTable splits and merges keep each tablet's rows exactly; no named file is deleted", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(opArb, { minLength: 5, maxLength: LONG ? 60 : 30 }),
      async (ops) => {
        const root = await Deno.makeTempDir();
        // A small memtable: flushes, and merging compactions, happen on their own.
        const host = new TabletHost(
          openTabletStorage(root, { memtableBytes: 1024 }),
        );
        const folder = localStoreFolder(root);
        const model = new Map<string, string>();
        let live: TabletRecord[] = [];
        let retired: string[] = [];
        let n = 0;
        const record = (start: string, end: string | null): TabletRecord => {
          const id = `m-${n++}`;
          return {
            id,
            table: "m",
            start: b64(enc.encode(start)),
            end: end === null ? null : b64(enc.encode(end)),
            dir: `m/${id}`,
            server: "s",
          };
        };
        const startOf = (r: TabletRecord) =>
          dec.decode(Buffer.from(r.start, "base64"));
        const endOf = (r: TabletRecord) =>
          r.end === null ? null : dec.decode(Buffer.from(r.end, "base64"));
        const open = (r: TabletRecord) => host.openTablet(r, SCHEMA, 1);
        const opened = (r: TabletRecord): OpenTablet => host.get(r.id)!;
        const holder = (row: string) =>
          live.find((r) =>
            startOf(r) <= row && (endOf(r) === null || row < endOf(r)!)
          )!;

        const check = async (what: string) => {
          for (const r of live) {
            const got: [string, string][] = [];
            for await (const row of opened(r).tablet.scan()) {
              got.push([dec.decode(row.key), dec.decode(row.cells[0]!.value)]);
            }
            const want = [...model].filter(([k]) =>
              k >= startOf(r) && (endOf(r) === null || k < endOf(r)!)
            ).sort((a, b) => compareBytes(enc.encode(a[0]), enc.encode(b[0])));
            assert.deepEqual(got, want, `${what}: rows of ${r.id}`);
            const bytes = await Deno.readFile(
              join(root, r.dir, "tables", "MANIFEST"),
            ).catch(() => undefined); // none before the first flush
            const tables = bytes ? parseManifest(bytes).tables : [];
            for (const t of tables) {
              const dir = t.store === undefined ? r.dir : `m/${t.store}`;
              await Deno.stat(join(root, dir, "tables", t.name)).catch(() => {
                throw new Error(
                  `${what}: ${r.id} names ${dir}/${t.name}, deleted`,
                );
              });
            }
          }
        };

        try {
          const first = record("", null);
          live = [first];
          await open(first);
          for (const o of ops) {
            switch (o.op) {
              case "put": {
                const row = ROWS[o.row]!;
                const value = `${o.value}`;
                await opened(holder(row)).tablet.mutateRow(enc.encode(row), [
                  { op: "put", ...F, value: enc.encode(value) },
                ]);
                model.set(row, value);
                break;
              }
              case "delete": {
                const row = ROWS[o.row]!;
                await opened(holder(row)).tablet.mutateRow(enc.encode(row), [
                  { op: "deleteRow" },
                ]);
                model.delete(row);
                break;
              }
              case "split": {
                const p = live[o.tablet % live.length]!;
                const at = ROWS[o.at]!;
                if (
                  at <= startOf(p) || (endOf(p) !== null && at >= endOf(p)!)
                ) break;
                const [l, r] = [record(startOf(p), at), record(at, endOf(p))];
                const t = opened(p);
                await host.freeze(t);
                await host.copySplit(t, enc.encode(at), l.dir, r.dir);
                await host.closeTablet(p.id, 1);
                if (o.commit) {
                  live = live.flatMap((x) => x === p ? [l, r] : [x]);
                  retired.push(p.dir);
                  await open(l);
                  await open(r);
                } else {
                  // The master never recorded it: the halves are orphans and
                  // the parent is served again.
                  await open(p);
                }
                break;
              }
              case "merge": {
                if (live.length < 2) break;
                const i = o.tablet % (live.length - 1);
                const [a, b] = [live[i]!, live[i + 1]!];
                const into = record(startOf(a), endOf(b));
                const [ta, tb] = [opened(a), opened(b)];
                await host.freeze(ta);
                await host.freeze(tb);
                await host.copyMerge(ta, tb, into.dir);
                await host.closeTablet(a.id, 1);
                await host.closeTablet(b.id, 1);
                if (o.commit) {
                  live.splice(i, 2, into);
                  retired.push(a.dir, b.dir);
                  await open(into);
                } else {
                  await open(a);
                  await open(b);
                }
                break;
              }
              case "compact":
                await opened(live[o.tablet % live.length]!).tablet.compact();
                break;
              case "reopen":
                await host.closeAll();
                for (const r of live) await open(r);
                break;
              case "sweep": {
                // A sweep cut short (a crash) sees only part of the list.
                const part = retired.slice(
                  0,
                  Math.max(0, retired.length - o.cut),
                );
                const gone = await sweepRetired(
                  folder,
                  live.map((r) => r.dir),
                  part,
                );
                retired = retired.filter((d) => !gone.includes(d));
                break;
              }
            }
            await check(`${o.op} ${JSON.stringify(o)}`);
          }
          // Once every tablet has compacted, a sweep deletes every retired store.
          for (const r of live) await opened(r).tablet.compact();
          await sweepRetired(folder, live.map((r) => r.dir), retired);
          await check("final sweep");
          for (const d of retired) {
            await assert.rejects(
              Deno.stat(join(root, d)),
              Deno.errors.NotFound,
            );
          }
        } finally {
          await host.closeAll();
          await Deno.remove(root, { recursive: true });
        }
      },
    ),
    { numRuns: LONG ? 150 : 8 },
  );
});
