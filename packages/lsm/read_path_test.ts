import assert from "node:assert/strict";
import fc from "fast-check";
import { compareBytes } from "./bytes.ts";
import type { FileStore, ReadableFile } from "./file_store.ts";
import { LocalFileStore } from "./local_file_store.ts";
import { LsmStore } from "./lsm_store.ts";

const LONG = Deno.env.get("STRATA_LONG") === "1";

/**
 * `LocalFileStore` without `readSync`: every block read is a promise, as
 * from a store that must wait (GFS), so the engine's asynchronous read
 * path is checked beside the synchronous one.
 */
function asyncOnly(inner: LocalFileStore): FileStore {
  const wrap = (f: ReadableFile): ReadableFile => ({
    size: f.size,
    read: (o, l) => f.read(o, l),
    close: () => f.close(),
  });
  return {
    create: (n) => inner.create(n),
    open: async (n) => wrap(await inner.open(n)),
    list: () => inner.list(),
    delete: (n) => inner.delete(n),
    writeAtomic: (n, b) => inner.writeAtomic(n, b),
    readWhole: (n) => inner.readWhole(n),
  };
}

type Op =
  | { op: "put"; k: number; v: number }
  | { op: "del"; k: number }
  | { op: "flush" };

/** Keys sharing a long prefix (as a tablet's cell keys do), 0–199. */
const key = (k: number) =>
  new TextEncoder().encode(`row-000000${String(k).padStart(4, "0")}\0\x01f`);
const value = (v: number) =>
  new TextEncoder().encode(`v${v}`.repeat(1 + v % 7));

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 10,
    arbitrary: fc.record({
      op: fc.constant("put" as const),
      k: fc.nat(199),
      v: fc.nat(1000),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant("del" as const), k: fc.nat(199) }),
  },
  { weight: 1, arbitrary: fc.constant({ op: "flush" as const }) },
);

/** Seeks as `bench:tablet` does them: a start key (present or not) and a limit; some with an end. */
const seekArb = fc.record({
  k: fc.nat(205),
  limit: fc.integer({ min: 1, max: 12 }),
  within: fc.boolean(),
  end: fc.option(fc.nat(205), { nil: undefined }),
});

Deno.test("seeks and gets over a memtable and several tables with overwrites and deletes match a sorted model, with blocks read in the caller's turn and through promises (fast-check)", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(opArb, { minLength: 1, maxLength: 400 }),
      fc.array(seekArb, { minLength: 1, maxLength: 30 }),
      fc.boolean(),
      async (ops, seeks, sync) => {
        const dir = await Deno.makeTempDir({ prefix: "strata-lsm-read-" });
        const local = await LocalFileStore.open(`${dir}/tables`);
        const db = await LsmStore.open(dir, {
          sync: "never",
          memtableBytes: 1 << 20,
          // Several tables, never merged: a seek merges them all.
          compactionTrigger: 1000,
          blockBytes: 128,
          // A few blocks: reads miss, blocks are evicted and read again.
          blockCacheBytes: 1024,
          files: sync ? local : asyncOnly(local),
        });
        const model = new Map<number, number>();
        try {
          for (const o of ops) {
            if (o.op === "put") {
              await db.put(key(o.k), value(o.v));
              model.set(o.k, o.v);
            } else if (o.op === "del") {
              await db.delete(key(o.k));
              model.delete(o.k);
            } else await db.flush();
          }
          const sorted = [...model.keys()].sort((a, b) => a - b);
          for (const s of seeks) {
            // A start inside a key (a prefix of it) or at the key itself.
            const start = s.within ? key(s.k).subarray(0, 12) : key(s.k);
            const end = s.end === undefined ? undefined : key(s.end);
            const want = sorted
              .filter((k) => compareBytes(key(k), start) >= 0)
              .filter((k) => end === undefined || compareBytes(key(k), end) < 0)
              .slice(0, s.limit)
              .map((k) => [key(k).join(","), value(model.get(k)!).join(",")]);
            if (end !== undefined && compareBytes(start, end) > 0) continue;
            const c = db.cursor({ start, end, limit: s.limit });
            const got: string[][] = [];
            for (let e = c.next(); e !== undefined; e = c.next()) {
              if (e instanceof Promise) {
                e = await e;
                if (e === undefined) break;
              }
              got.push([e.key.join(","), e.value.join(",")]);
            }
            assert.deepEqual(got, want, `seek ${s.k} limit ${s.limit}`);
            const v = await db.get(key(s.k));
            assert.deepEqual(
              v,
              model.has(s.k) ? value(model.get(s.k)!) : undefined,
              `get ${s.k}`,
            );
          }
        } finally {
          await db.close();
          await Deno.remove(dir, { recursive: true });
        }
      },
    ),
    { numRuns: LONG ? 300 : 40 },
  );
});
