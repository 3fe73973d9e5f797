import assert from "node:assert/strict";
import fc from "fast-check";
import { hashKey } from "./bloom.ts";
import { LsmStore } from "./lsm_store.ts";
import { MemtableFilter } from "./memtable_filter.ts";
import type { PrefixExtractor } from "./prefix_extractor.ts";

/** The prefix is the key up to and including its first `/`. */
const SLASH: PrefixExtractor = {
  name: "test.slash",
  prefixOf(key) {
    const i = key.indexOf(0x2f);
    return i < 0 ? undefined : key.subarray(0, i + 1);
  },
};
const enc = (s: string) => new TextEncoder().encode(s);

Deno.test("MemtableFilter never misses an added prefix, rarely passes an absent one", () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(
        fc.string({ minLength: 1, maxLength: 12 }).filter((s) =>
          !s.includes("/")
        ),
        {
          minLength: 1,
          maxLength: 200,
        },
      ),
      (rows) => {
        const f = new MemtableFilter(SLASH, 1 << 16);
        for (const r of rows) f.add(enc(`${r}/cell`));
        for (const r of rows) assert.ok(f.mayContain(hashKey(enc(`${r}/`))));
      },
    ),
  );
  const f = new MemtableFilter(SLASH, 1 << 20);
  for (let i = 0; i < 5_000; i++) f.add(enc(`row${i}/a`));
  let passed = 0;
  for (let i = 5_000; i < 7_000; i++) {
    if (f.mayContain(hashKey(enc(`row${i}/`)))) passed++;
  }
  assert.ok(passed < 20, `${passed} of 2,000 absent prefixes passed`);
  // A key without a prefix adds nothing.
  const g = new MemtableFilter(SLASH, 1 << 16);
  g.add(enc("noslash"));
  assert.equal(g.mayContain(hashKey(enc("noslash"))), false);
});

Deno.test("prefix reads see the memtable, the one being flushed and replayed writes through their filters", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-memfilter-" });
  try {
    const opts = { prefixExtractor: SLASH, memtableBytes: 4096 };
    let s = await LsmStore.open(dir, opts);
    const rows = async (p: string) => {
      const out: string[] = [];
      const c = s.cursor({ prefix: enc(p), gather: true });
      for (let e = await c.next(); e !== undefined; e = await c.next()) {
        out.push(new TextDecoder().decode(e.key));
      }
      return out;
    };
    // Enough writes for several flushes: every row is read back from
    // wherever it is (memtable, flushing memtable, tables).
    for (let i = 0; i < 300; i++) {
      const w = s.write([{ key: enc(`r${i}/x`), value: enc("v".repeat(40)) }]);
      // A read while a flush may be running (the frozen memtable).
      if (i % 37 === 0) assert.deepEqual(await rows(`r${i}/`), []);
      await w;
      assert.deepEqual(await rows(`r${i}/`), [`r${i}/x`]);
    }
    assert.ok(s.stats().flushes > 0);
    // Rows left in the memtable (a 4 KiB one flushes at ~60 rows).
    for (let i = 300; i < 310; i++) {
      await s.write([{ key: enc(`r${i}/x`), value: enc("v") }]);
    }
    assert.ok(s.stats().memtableBytes > 0);
    await s.close();
    // Reopened: the log's records are replayed into the new memtable's filter.
    s = await LsmStore.open(dir, opts);
    for (let i = 0; i < 310; i++) {
      assert.deepEqual(await rows(`r${i}/`), [`r${i}/x`]);
    }
    assert.deepEqual(await rows("r310/"), []);
    await s.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
