import assert from "node:assert/strict";
import { GfsClient } from "@strata/gfs";
import { startTestCell } from "../../gfs/_test_support.ts";
import { GfsFence, isFencedError } from "./gfs_fence.ts";
import { GfsFileStore, TABLE_IDS_PER_EPOCH } from "./gfs_file_store.ts";
import { openGfsStore } from "./open_gfs_store.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const key = (i: number) => enc.encode(`row${String(i).padStart(5, "0")}`);
const val = (i: number, round: number) =>
  enc.encode(`v${i}-r${round}`.padEnd(100, "."));

async function withCell(
  fn: (gfs: () => GfsClient, url: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  const cell = await startTestCell(dir, {
    chunkBytes: 256 * 1024,
    replication: 3,
    servers: 3,
  });
  try {
    // A fresh client per "server": nothing cached is shared between them.
    await fn(
      () =>
        new GfsClient(cell.master.url, { token: cell.secrets.tokens.write }),
      cell.master.url,
    );
  } finally {
    await cell.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("LsmStore on GFS: writes, flushes, compaction; a fresh server reopening from GFS sees every acknowledged write", async () => {
  await withCell(async (client) => {
    const a = await openGfsStore(client(), "/tablets/t1", {
      memtableBytes: 16 * 1024,
      compactionTrigger: 3,
      owner: "server-a",
    });
    assert.equal(a.fence.epoch, 1);
    const expected = new Map<string, string | null>();
    // Concurrent writers: the log's group commit puts several in one block.
    for (let round = 0; round < 3; round++) {
      await Promise.all(
        Array.from({ length: 8 }, async (_, w) => {
          for (let i = w; i < 200; i += 8) {
            if (round === 2 && i % 5 === 0) {
              await a.store.delete(key(i));
              expected.set(dec.decode(key(i)), null);
            } else {
              await a.store.put(key(i), val(i, round));
              expected.set(dec.decode(key(i)), dec.decode(val(i, round)));
            }
          }
        }),
      );
    }
    // A flush, then a few writes that only the log holds.
    await a.store.flush();
    for (let i = 0; i < 5; i++) {
      await a.store.put(key(i), val(i, 9));
      expected.set(dec.decode(key(i)), dec.decode(val(i, 9)));
    }
    const st = a.store.stats();
    assert.ok(st.flushes >= 2, `flushes ${st.flushes}`);
    assert.ok(st.compactions >= 1, `compactions ${st.compactions}`);
    assert.ok(
      a.log.stats.blocks < a.log.stats.records,
      `group commit: ${a.log.stats.records} records in ${a.log.stats.blocks} blocks`,
    );
    // Only the newest manifest version and the live tables remain; the log
    // files the tables cover were deleted.
    const gfs = client();
    const paths = (await gfs.ls("/tablets/t1/")).map((f) => f.path);
    const manifests = paths.filter((p) => p.includes("/atomic/MANIFEST/"));
    assert.equal(manifests.length, 1, manifests.join());
    const tables = paths.filter((p) => p.includes("/tables/"));
    assert.deepEqual(
      tables.map((p) => p.split("/").pop()).sort(),
      a.store.tables.map((t) => t.name).sort(),
    );
    assert.ok(
      paths.filter((p) => p.includes("/slog/")).length <= 3,
      paths.join("\n"),
    );
    // The first server stops without flushing; another one takes over.
    await a.store.close();
    const b = await openGfsStore(client(), "/tablets/t1", {
      owner: "server-b",
    });
    try {
      assert.equal(b.fence.epoch, 2);
      assert.equal(b.store.stats().logRecordsReplayed, 5);
      for (const [k, v] of expected) {
        const got = await b.store.get(enc.encode(k));
        assert.equal(got === undefined ? null : dec.decode(got), v, k);
      }
      let n = 0;
      for await (const _ of b.store.scan({ prefix: enc.encode("row") })) n++;
      assert.equal(n, [...expected.values()].filter((v) => v !== null).length);
      // New tables of epoch 2 are named in its own id range.
      await b.store.put(key(1), enc.encode("b"));
      await b.store.flush();
      assert.ok(b.store.tables[0]!.id >= 2 * 2 ** 24);
    } finally {
      await b.store.close();
    }
  });
});

Deno.test("a fenced owner can neither acknowledge a write nor replace the manifest nor delete the new owner's tables", async () => {
  await withCell(async (client) => {
    const a = await openGfsStore(client(), "/tablets/t2", {
      memtableBytes: 1 << 20,
      owner: "a",
    });
    for (let i = 0; i < 20; i++) await a.store.put(key(i), val(i, 0));
    await a.store.flush();
    for (let i = 20; i < 40; i++) await a.store.put(key(i), val(i, 0));
    await a.store.flush();
    for (let i = 40; i < 50; i++) await a.store.put(key(i), val(i, 0));
    // Server a is cut off (still running); server b takes the tablet over.
    const b = await openGfsStore(client(), "/tablets/t2", { owner: "b" });
    try {
      for (let i = 0; i < 50; i++) {
        assert.equal(
          dec.decode((await b.store.get(key(i)))!),
          dec.decode(val(i, 0)),
        );
      }
      // a's write lands in its log but is refused: b claimed first.
      await assert.rejects(a.store.put(key(999), enc.encode("late")), (e) => {
        assert.ok(isFencedError(e), String(e));
        // It is in a's log: its outcome is unknown, not "not applied".
        assert.equal(e.maybeApplied, true);
        return true;
      });
      // a's compaction writes a table and a manifest version that loses,
      // and a keeps its input tables (b still reads them).
      await assert.rejects(a.store.compact(), (e) => isFencedError(e));
      await b.store.put(key(1000), enc.encode("b's"));
      for (let i = 0; i < 50; i++) assert.ok(await b.store.get(key(i)));
      await b.store.close();
      await a.store.close();
      // A third owner sees b's write and not a's refused one.
      const c = await openGfsStore(client(), "/tablets/t2", { owner: "c" });
      try {
        assert.equal(c.fence.epoch, 3);
        assert.equal(await c.store.get(key(999)), undefined);
        assert.equal(dec.decode((await c.store.get(key(1000)))!), "b's");
        for (let i = 0; i < 50; i++) assert.ok(await c.store.get(key(i)));
        await c.store.compact();
        for (let i = 0; i < 50; i++) assert.ok(await c.store.get(key(i)));
      } finally {
        await c.store.close();
      }
    } finally {
      await b.store.close();
      await a.store.close();
    }
  });
});

Deno.test("concurrent claimers of one store get distinct, consecutive epochs; each sees whether it was superseded", async () => {
  await withCell(async (client) => {
    const fences = await Promise.all(
      [0, 1, 2, 3].map((i) => GfsFence.claim(client(), "/tablets/t3", `c${i}`)),
    );
    assert.deepEqual(fences.map((f) => f.epoch).sort(), [1, 2, 3, 4]);
    const newest = fences.find((f) => f.epoch === 4)!;
    await newest.check();
    for (const f of fences.filter((f) => f !== newest)) {
      await assert.rejects(f.check(), (e) => isFencedError(e));
      assert.equal(f.fenced, true);
    }
  });
});

Deno.test("an owner stopped while it opened the store cannot delete a table its successor wrote", async () => {
  await withCell(async (client) => {
    const dir = "/tablets/t4";
    // Owner 1 claims and opens its file store, then stalls (as if stopped
    // before deleting the tables its manifest does not name).
    const fence1 = await GfsFence.claim(client(), dir, "stalled");
    const files1 = await GfsFileStore.open(client(), dir, fence1);
    const b = await openGfsStore(client(), dir, { owner: "successor" });
    try {
      await b.store.put(key(1), enc.encode("b"));
      await b.store.flush();
      const name = b.store.tables[0]!.name;
      assert.ok((await files1.list()).includes(name));
      await files1.delete(name); // refused: written by a newer owner
      assert.ok((await files1.list()).includes(name));
      // Its own (and older owners') files it may delete.
      const own = await files1.create(`${TABLE_IDS_PER_EPOCH}.sst`);
      await own.append(enc.encode("x"));
      await own.sync();
      await own.close();
      await files1.delete(`${TABLE_IDS_PER_EPOCH}.sst`);
      assert.ok(!(await files1.list()).includes(`${TABLE_IDS_PER_EPOCH}.sst`));
      assert.equal(dec.decode((await b.store.get(key(1)))!), "b");
    } finally {
      await b.store.close();
    }
  });
});

Deno.test("a fenced owner's late version of a file its successor never wrote is not adopted by the next owner", async () => {
  await withCell(async (client) => {
    const dir = "/tablets/t5";
    // Owner 1 is stopped before its first manifest: no version exists yet
    // when owner 2 opens, so owner 2 adopts (and copies) none.
    const fence1 = await GfsFence.claim(client(), dir, "stopped");
    const files1 = await GfsFileStore.open(client(), dir, fence1);
    const b = await openGfsStore(client(), dir, { owner: "b" });
    await b.store.put(key(1), enc.encode("b"));
    await b.store.close();
    // Owner 1 resumes: its manifest lands in GFS but is refused.
    await assert.rejects(
      files1.writeAtomic("MANIFEST", enc.encode("not a manifest")),
      (e) => isFencedError(e),
    );
    const c = await openGfsStore(client(), dir, { owner: "c" });
    try {
      assert.equal(c.fence.epoch, 3);
      assert.equal(dec.decode((await c.store.get(key(1)))!), "b");
    } finally {
      await c.store.close();
    }
  });
});
