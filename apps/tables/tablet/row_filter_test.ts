import assert from "node:assert/strict";
import {
  BlockCache,
  hashKey,
  loadManifest,
  LocalFileStore,
  SSTable,
} from "@strata/lsm";
import { ROW_EXTRACTOR, rowPrefix } from "./key_codec.ts";
import { openTablet } from "./tablet.ts";
import type { KeyRange, TableSchema, Tablet } from "./types.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const ALL: KeyRange = { start: new Uint8Array(0), end: null };
const SCHEMA: TableSchema = { name: "t", families: [{ name: "f" }] };
const row = (i: number) => enc.encode(`row${String(i).padStart(4, "0")}`);

async function putRows(t: Tablet, from: number, to: number, v: string) {
  for (let i = from; i < to; i += 2) {
    await t.mutateRow(row(i), [
      {
        op: "put",
        family: "f",
        qualifier: enc.encode("a"),
        value: enc.encode(v),
      },
      {
        op: "put",
        family: "f",
        qualifier: enc.encode("b"),
        value: enc.encode(v),
      },
    ]);
  }
}

Deno.test("a tablet's tables carry row Bloom filters; tables written without them are still read, and rows read alike", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-tablet-rows-" });
  try {
    // First without row filters (as a tablet written before them).
    let t = await openTablet(dir, SCHEMA, ALL, {
      lsm: { prefixExtractor: undefined },
    });
    await putRows(t, 0, 400, "old");
    await t.flush();
    await t.close();
    t = await openTablet(dir, SCHEMA, ALL);
    await putRows(t, 200, 600, "new");
    await t.flush();
    for (let i = 0; i < 600; i++) {
      const r = await t.getRow(row(i));
      if (i % 2 === 1) {
        assert.equal(r, undefined, `row ${i}`);
        continue;
      }
      assert.deepEqual(
        r?.cells.map((c) =>
          `${dec.decode(c.qualifier)}=${dec.decode(c.value)}`
        ),
        i < 200 ? ["a=old", "b=old"] : ["a=new", "b=new"],
        `row ${i}`,
      );
    }
    await t.close();

    const files = await LocalFileStore.open(`${dir}/tables`);
    const manifest = await loadManifest(files);
    assert.equal(manifest.tables.length, 2);
    const cache = new BlockCache(0);
    const [newer, older] = await Promise.all(
      manifest.tables.map(async (m) =>
        await SSTable.open(m.id, m.name, await files.open(m.name), cache)
      ),
    );
    assert.equal(older!.prefixExtractorName, undefined);
    assert.equal(newer!.prefixExtractorName, ROW_EXTRACTOR.name);
    // The newer table's filter has its rows and rules out rows it lacks
    // (a false positive is possible for one; not for all of these).
    const has = (i: number) =>
      newer!.mayContainPrefix(ROW_EXTRACTOR.name, hashKey(rowPrefix(row(i))));
    for (let i = 200; i < 600; i += 2) assert.ok(has(i), `row ${i}`);
    let passed = 0;
    for (let i = 1; i < 600; i += 2) if (has(i)) passed++;
    assert.ok(passed < 15, `${passed} of 300 absent rows pass the filter`);
    older!.retire();
    newer!.retire();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
