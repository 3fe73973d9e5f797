import assert from "node:assert/strict";
import { LsmStore } from "./lsm_store.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const k = (s: string) => enc.encode(s);

Deno.test("a flush filter leaves entries out of the flushed table but never sees a tombstone, which still hides the key's older table entry", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-lsm-flushfilter-" });
  const seen: string[] = [];
  let calls = 0;
  const open = () =>
    LsmStore.open(dir, {
      sync: "never",
      flushFilter: () => {
        calls++;
        return (key) => {
          seen.push(dec.decode(key));
          return !dec.decode(key).startsWith("drop");
        };
      },
    });
  let db = await open();
  try {
    await db.put(k("gone"), k("old")); // in the first table
    await db.flush();
    await db.put(k("drop1"), k("x"));
    await db.put(k("keep1"), k("y"));
    await db.write([{ key: k("gone"), value: null }]);
    await db.flush();
    assert.equal(calls, 2);
    // The tombstone of "gone" was not offered to the filter.
    assert.deepEqual(seen, ["gone", "drop1", "keep1"]);
    const keys: string[] = [];
    for await (const e of db.scan()) keys.push(dec.decode(e.key));
    assert.deepEqual(keys, ["keep1"]);
    await db.close();
    // The table, not the log, is what holds the store now.
    db = await open();
    assert.equal(await db.get(k("drop1")), undefined);
    assert.equal(await db.get(k("gone")), undefined);
    assert.deepEqual(await db.get(k("keep1")), k("y"));
  } finally {
    await db.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a flush filter factory that returns undefined keeps everything", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-lsm-flushfilter-" });
  const db = await LsmStore.open(dir, {
    sync: "never",
    flushFilter: () => undefined,
  });
  try {
    await db.put(k("a"), k("1"));
    await db.put(k("b"), k("2"));
    await db.flush();
    const keys: string[] = [];
    for await (const e of db.scan()) keys.push(dec.decode(e.key));
    assert.deepEqual(keys, ["a", "b"]);
  } finally {
    await db.close();
    await Deno.remove(dir, { recursive: true });
  }
});
