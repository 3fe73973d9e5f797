/**
 * Shared SSTables: a store made from another's `shareRange` reads only
 * its range of the other's files, writes its own files, and drops the
 * references when it compacts (without deleting the shared files).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { LsmStore } from "./lsm_store.ts";
import { loadManifest } from "./manifest.ts";
import { LocalFileStore } from "./local_file_store.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const key = (i: number) => enc.encode(`k${String(i).padStart(4, "0")}`);

async function keys(db: LsmStore): Promise<string[]> {
  const out: string[] = [];
  for await (const e of db.scan()) out.push(dec.decode(e.key));
  return out;
}

Deno.test("a store shares a range of a sibling's tables, then compacts them away", async () => {
  const root = await Deno.makeTempDir();
  try {
    const parent = await LsmStore.open(join(root, "p"), { sync: "never" });
    for (let i = 0; i < 400; i++) {
      await parent.put(key(i), enc.encode("v".repeat(100) + i));
      if (i === 199) await parent.flush();
    }
    await parent.delete(key(10));
    // Left in the memtable: shareRange flushes it.
    await parent.put(key(300), enc.encode("new"));
    const mid = key(250);
    const left = await parent.shareRange("p", undefined, mid);
    const right = await parent.shareRange("p", mid, undefined);
    // Two tables: k0000..k0199, then the rest with k0010's tombstone.
    assert.equal(left.length, 2);
    // The first one holds nothing of the right half: not named.
    assert.equal(right.length, 1);
    const total = parent.stats().tableBytes;
    await parent.close();

    const l = await LsmStore.open(join(root, "l"), {
      sync: "never",
      shared: left,
    });
    const r = await LsmStore.open(join(root, "r"), {
      sync: "never",
      shared: right,
    });
    const want = (lo: number, hi: number) =>
      Array.from(
        { length: hi - lo },
        (_, i) => `k${String(lo + i).padStart(4, "0")}`,
      )
        .filter((k) => k !== "k0010");
    assert.deepEqual(await keys(l), want(0, 250));
    assert.deepEqual(await keys(r), want(250, 400));
    // Ranges and prefixes that end past the clip still stop at it (a
    // table cursor takes the nearer of the two ends).
    const ranged = async (db: LsmStore, o: Parameters<LsmStore["scan"]>[0]) => {
      const out: string[] = [];
      for await (const e of db.scan(o)) out.push(dec.decode(e.key));
      return out;
    };
    assert.deepEqual(
      await ranged(l, { start: key(240), end: key(300) }),
      want(240, 250),
    );
    assert.deepEqual(
      await ranged(l, { prefix: enc.encode("k02") }),
      want(200, 250),
    );
    assert.deepEqual(
      await ranged(r, { start: key(240), end: key(260) }),
      want(250, 260),
    );
    assert.equal(await r.get(key(5)), undefined);
    assert.equal(await l.get(key(260)), undefined);
    assert.equal(await l.get(key(10)), undefined);
    assert.equal(dec.decode(await r.get(key(300))), "new");
    // Sizes count the shared files' blocks in range only.
    const sizes = l.stats().tableBytes + r.stats().tableBytes;
    assert.ok(sizes < total * 1.2, `${sizes} vs ${total}`);
    assert.ok(l.stats().tableBytes < total, "the left half is smaller");

    // New writes go to the store's own files; reopen keeps everything.
    await l.put(key(1), enc.encode("mine"));
    await l.flush();
    await l.close();
    const l2 = await LsmStore.open(join(root, "l"), { sync: "never" });
    assert.equal(dec.decode((await l2.get(key(1)))!), "mine");
    assert.deepEqual(await keys(l2), want(0, 250));

    // Compaction rewrites the range into own files and drops the references.
    await l2.compact();
    const m = await loadManifest(
      await LocalFileStore.open(join(root, "l", "tables")),
    );
    assert.ok(
      m.tables.every((t) => t.store === undefined),
      "no reference left",
    );
    assert.deepEqual(await keys(l2), want(0, 250));
    await l2.close();
    // The parent's files are still there for the right half.
    assert.deepEqual(await keys(r), want(250, 400));
    const p = await LocalFileStore.open(join(root, "p", "tables"));
    assert.equal((await p.list()).filter((n) => n.endsWith(".sst")).length, 2);
    await r.close();
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
