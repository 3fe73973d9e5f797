import assert from "node:assert/strict";
import { ENVELOPE_TRAILER_BYTES } from "@strata/codec";
import fc from "fast-check";
import { BlockCache } from "./block_cache.ts";
import { hashKey } from "./bloom.ts";
import { compareBytes } from "./bytes.ts";
import { LocalFileStore } from "./local_file_store.ts";
import { LsmStore, type LsmStoreOptions } from "./lsm_store.ts";
import type { PrefixExtractor } from "./prefix_extractor.ts";
import { SSTable } from "./sstable.ts";
import { FOOTER_V2_BYTES, SSTableBuilder } from "./sstable_builder.ts";

const LONG = Deno.env.get("STRATA_LONG") === "1";
const enc = new TextEncoder();
const dec = new TextDecoder();
// Keys travel as latin1 so each character is one byte and the model's order is byte order.
const bytesOf = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const strOf = (b: Uint8Array) => String.fromCharCode(...b);

/** A key's "row": up to and including its first `|` (none without one). */
const ROW: PrefixExtractor = {
  name: "test.row",
  prefixOf(key) {
    const i = key.indexOf(0x7c);
    return i < 0 ? undefined : key.subarray(0, i + 1);
  },
};
/**
 * Another valid extractor (a key's first byte): a table built under
 * {@link ROW} read with this one must not trust its filter (the names
 * differ), or reads would skip tables that hold the rows.
 */
const FIRST_BYTE: PrefixExtractor = {
  name: "test.first-byte",
  prefixOf: (key) => key.length === 0 ? undefined : key.subarray(0, 1),
};

const EXTRACTORS = {
  row: ROW,
  none: undefined,
  firstByte: FIRST_BYTE,
} as const;
type Which = keyof typeof EXTRACTORS;

type Op =
  | { op: "put"; k: string; v: string }
  | { op: "del"; k: string }
  | { op: "flush" }
  | { op: "compact" }
  | { op: "reopen"; with: Which }
  | { op: "read"; prefix: string; start?: string; limit?: number };

const rowArb = fc.string({
  unit: fc.constantFrom("a", "b", "c"),
  maxLength: 2,
});
// Most keys are `row|column`; a few have no `|` (no prefix), or two.
const keyArb = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.tuple(rowArb, fc.constantFrom("", "x", "y", "x|z")).map((
      [r, c],
    ) => `${r}|${c}`),
  },
  { weight: 1, arbitrary: rowArb },
);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      op: fc.constant("put" as const),
      k: keyArb,
      v: fc.string({ maxLength: 20 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant("del" as const), k: keyArb }),
  },
  { weight: 2, arbitrary: fc.constant({ op: "flush" as const }) },
  { weight: 1, arbitrary: fc.constant({ op: "compact" as const }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("reopen" as const),
      with: fc.constantFrom<Which>("row", "none", "firstByte"),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant("read" as const),
      // A whole row (the filter applies), a row and part of a column (it
      // applies through the row), or any bytes (a row-less prefix).
      prefix: fc.oneof(
        rowArb.map((r) => `${r}|`),
        fc.tuple(rowArb, fc.constantFrom("x", "x|")).map(([r, c]) =>
          `${r}|${c}`
        ),
        keyArb,
        rowArb,
      ),
      start: fc.option(keyArb, { nil: undefined }),
      limit: fc.option(fc.nat(4), { nil: undefined }),
    }, { requiredKeys: ["op", "prefix"] }),
  },
);

function modelRead(
  model: Map<string, string>,
  o: Op & { op: "read" },
): [string, string][] {
  return [...model.keys()]
    .filter((k) =>
      k.startsWith(o.prefix) &&
      (o.start === undefined ||
        compareBytes(bytesOf(k), bytesOf(o.start)) >= 0)
    )
    .sort((a, b) => compareBytes(bytesOf(a), bytesOf(b)))
    .slice(0, o.limit ?? Infinity)
    .map((k) => [k, model.get(k)!]);
}

async function drain(
  db: LsmStore,
  options: Parameters<LsmStore["cursor"]>[0],
): Promise<[string, string][]> {
  const c = db.cursor(options);
  const out: [string, string][] = [];
  for (let e = c.next(); e !== undefined; e = c.next()) {
    if (e instanceof Promise) {
      e = await e;
      if (e === undefined) break;
    }
    out.push([strOf(e.key), dec.decode(e.value)]);
  }
  return out;
}

Deno.test("prefix reads match a Map with prefix filters on, off and renamed across flushes, compactions and reopens (fast-check)", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom<Which>("row", "none", "firstByte"),
      // Long histories (fast-check's default size keeps arrays short):
      // tables built under one extractor, then read under another.
      fc.array(opArb, { minLength: 20, maxLength: 100, size: "max" }),
      async (first, ops) => {
        const dir = await Deno.makeTempDir({ prefix: "strata-lsm-prefix-" });
        const opts = (w: Which): LsmStoreOptions => ({
          sync: "never",
          memtableBytes: 300,
          blockBytes: 64,
          compactionTrigger: 4,
          blockCacheBytes: 1024,
          ...(EXTRACTORS[w] ? { prefixExtractor: EXTRACTORS[w] } : {}),
        });
        let db = await LsmStore.open(dir, opts(first));
        const model = new Map<string, string>();
        try {
          for (const o of ops) {
            switch (o.op) {
              case "put":
                await db.put(bytesOf(o.k), enc.encode(o.v));
                model.set(o.k, o.v);
                break;
              case "del":
                await db.delete(bytesOf(o.k));
                model.delete(o.k);
                break;
              case "flush":
                await db.flush();
                break;
              case "compact":
                await db.compact();
                break;
              case "reopen":
                await db.close();
                db = await LsmStore.open(dir, opts(o.with));
                break;
              case "read": {
                const want = modelRead(model, o);
                const range = {
                  prefix: bytesOf(o.prefix),
                  ...(o.start !== undefined ? { start: bytesOf(o.start) } : {}),
                  ...(o.limit !== undefined ? { limit: o.limit } : {}),
                };
                const msg = JSON.stringify(o);
                assert.deepEqual(
                  await drain(db, { ...range, gather: true }),
                  want,
                  `gathered ${msg}`,
                );
                assert.deepEqual(await drain(db, range), want, `walked ${msg}`);
                break;
              }
            }
          }
        } finally {
          await db.close();
          await Deno.remove(dir, { recursive: true });
        }
      },
    ),
    { numRuns: LONG ? 400 : 50 },
  );
});

/** Writes a table of `keys` (sorted) as `name`, built with `extractor`. */
async function writeTable(
  files: LocalFileStore,
  name: string,
  keys: Uint8Array[],
  extractor?: PrefixExtractor,
): Promise<SSTable> {
  const b = new SSTableBuilder({
    blockBytes: 256,
    ...(extractor ? { prefixExtractor: extractor } : {}),
  });
  for (const k of keys) b.add(k, enc.encode("v"));
  const f = await files.create(name);
  await f.append(b.finish());
  await f.sync();
  await f.close();
  return await SSTable.open(1, name, await files.open(name), new BlockCache(0));
}

Deno.test("a table's prefix filter never misses an added prefix and rejects most others; without one (version 1) or under another name it rules nothing out", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const files = await LocalFileStore.open(dir);
    const rows: string[] = [];
    const keys: Uint8Array[] = [];
    for (let r = 0; r < 2000; r++) {
      const row = `row${String(r * 2).padStart(6, "0")}|`;
      rows.push(row);
      // One to three columns per row: each prefix goes in once.
      for (let c = 0; c <= r % 3; c++) keys.push(enc.encode(`${row}c${c}`));
    }
    const t = await writeTable(files, "with.sst", keys, ROW);
    assert.equal(t.prefixExtractorName, "test.row");
    await t.verify();
    for (const row of rows) {
      assert.ok(t.mayContainPrefix(ROW.name, hashKey(enc.encode(row))), row);
    }
    let falsePositives = 0;
    for (let r = 0; r < 2000; r++) {
      const absent = enc.encode(`row${String(r * 2 + 1).padStart(6, "0")}|`);
      if (t.mayContainPrefix(ROW.name, hashKey(absent))) falsePositives++;
    }
    assert.ok(falsePositives < 60, `${falsePositives} of 2000`);
    const absent = hashKey(enc.encode("row000001|"));
    assert.equal(t.mayContainPrefix(ROW.name, absent), false);
    assert.equal(t.mayContainPrefix("another", absent), true);
    // The whole-key filter is still there for point reads.
    assert.deepEqual(await t.get(enc.encode("row000000|c0")), enc.encode("v"));
    assert.equal(await t.get(enc.encode("row000001|c0")), undefined);
    t.retire();

    const old = await writeTable(files, "without.sst", keys);
    assert.equal(old.prefixExtractorName, undefined);
    assert.equal(old.mayContainPrefix(ROW.name, absent), true);
    old.retire();
    // A table built without an extractor is the version 1 format.
    const raw = await Deno.readFile(`${dir}/without.sst`);
    assert.equal(new DataView(raw.buffer).getUint16(4, true), 1);
    const v2 = await Deno.readFile(`${dir}/with.sst`);
    assert.equal(new DataView(v2.buffer).getUint16(4, true), 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a damaged prefix filter block is refused when the table is opened", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const files = await LocalFileStore.open(dir);
    const keys = Array.from({ length: 50 }, (_, i) => enc.encode(`r${i}|c`))
      .sort(compareBytes);
    (await writeTable(files, "t.sst", keys, ROW)).retire();
    const raw = await Deno.readFile(`${dir}/t.sst`);
    // The prefix filter block ends just before the footer and the
    // envelope's trailer; its last filter bits sit before its k byte and
    // its own CRC32C.
    const flipped = raw.slice();
    flipped[raw.length - ENVELOPE_TRAILER_BYTES - FOOTER_V2_BYTES - 6]! ^= 0x40;
    await Deno.writeFile(`${dir}/bad.sst`, flipped);
    await assert.rejects(
      SSTable.open(
        2,
        "bad.sst",
        await files.open("bad.sst"),
        new BlockCache(0),
      ),
      /prefix filter checksum mismatch/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Block reads (cache hits and misses) so far. */
const blockReads = (db: LsmStore) =>
  db.stats().cacheHits + db.stats().cacheMisses;

Deno.test("a read of a missing row touches no data block of a table with a prefix filter, and some without one", async () => {
  const dir = await Deno.makeTempDir();
  const row = (i: number) => `row${String(i).padStart(5, "0")}|`;
  try {
    const open = (extractor?: PrefixExtractor) =>
      LsmStore.open(dir, {
        sync: "never",
        compactionTrigger: 100,
        ...(extractor ? { prefixExtractor: extractor } : {}),
      });
    let db = await open(ROW);
    // Three tables over the same key range (even rows only, two columns).
    for (let t = 0; t < 3; t++) {
      for (let i = t; i < 3000; i += 3) {
        if (i % 2 === 1) continue;
        await db.put(enc.encode(`${row(i)}a`), enc.encode(`v${i}`));
        await db.put(enc.encode(`${row(i)}b`), enc.encode(`w${i}`));
      }
      await db.flush();
    }
    assert.equal(db.stats().tables, 3);
    const read = (i: number) =>
      drain(db, { prefix: enc.encode(row(i)), gather: true });
    // Rows the tables cover but lack: no block of any table is read
    // (the filters' false positives may let a few through).
    let touched = 0;
    for (let i = 1; i < 3000; i += 20) {
      const before = blockReads(db);
      assert.deepEqual(await read(i), []);
      if (blockReads(db) > before) touched++;
    }
    assert.ok(touched <= 6, `${touched} of 150 missing rows read a block`);
    assert.deepEqual(await read(1001), []);
    // A present row is found whole.
    assert.deepEqual(await read(1000), [
      [`${row(1000)}a`, "v1000"],
      [`${row(1000)}b`, "w1000"],
    ]);
    // The same store without the extractor reads blocks for missing rows.
    await db.close();
    db = await open();
    const before = blockReads(db);
    assert.deepEqual(await read(1001), []);
    assert.ok(blockReads(db) > before);
    // Reopened with it, the old tables' filters are used again.
    await db.close();
    db = await open(ROW);
    const again = blockReads(db);
    assert.deepEqual(await read(1001), []);
    assert.equal(blockReads(db), again);
    await db.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
