import assert from "node:assert/strict";
import { join } from "node:path";
import type { FileStore } from "./file_store.ts";
import { LocalFileStore } from "./local_file_store.ts";
import { isLsmError } from "./lsm_error.ts";
import { LsmStore } from "./lsm_store.ts";
import { MANIFEST_NAME, parseManifest } from "./manifest.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const key = (i: number) => enc.encode(`k${String(i).padStart(5, "0")}`);
const value = (i: number) => enc.encode(`v${i}-${"x".repeat(40)}`);

/** The tables the manifest on disk names (none before the first). */
function namedTables(dir: string): number {
  try {
    const bytes = Deno.readFileSync(join(dir, "tables", MANIFEST_NAME));
    return parseManifest(bytes).tables.length;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return 0;
    throw e;
  }
}

/**
 * Puts keys from 0 until the store has a table or holds more than
 * `memtableBytes` in memtables (the live one and one frozen for its
 * flush), awaiting each put: with sync off each settles in the caller's
 * turn, so this never yields to the event loop (no file I/O can complete
 * meanwhile), as a benchmark loop does. Returns the number of keys put.
 */
async function fillOneMemtable(
  db: LsmStore,
  memtableBytes: number,
): Promise<number> {
  let i = 0;
  while (db.stats().tables === 0 && db.stats().memtableBytes <= memtableBytes) {
    await db.put(key(i), value(i));
    i++;
  }
  return i;
}

/** `dir`'s local store with only the methods a store that must wait has (GFS). */
function waitingStore(files: LocalFileStore): FileStore {
  return {
    create: (n) => files.create(n),
    open: (n) => files.open(n),
    list: () => files.list(),
    delete: (n) => files.delete(n),
    writeAtomic: (n, b) => files.writeAtomic(n, b),
    readWhole: (n) => files.readWhole(n),
  };
}

Deno.test("a flush on local disk is read in the turn that froze its memtable; the manifest names the table only once it is durable", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-lsm-flushnow-" });
  try {
    const db = await LsmStore.open(dir, {
      memtableBytes: 8 * 1024,
      sync: "never",
    });
    const n = await fillOneMemtable(db, 8 * 1024);
    // Still in the turn that froze the memtable: the table is read...
    assert.equal(db.stats().tables, 1, "the flushed table is installed");
    assert.equal(db.stats().memtableBytes, 0, "the frozen memtable is gone");
    for (let i = 0; i < n; i++) {
      assert.equal(dec.decode((await db.get(key(i)))!), dec.decode(value(i)));
    }
    // ...but not named: its bytes are not yet known durable.
    assert.equal(namedTables(dir), 0, "manifest names no table yet");
    assert.equal(db.stats().flushes, 0);
    // Once the event loop turns, the sync and the manifest follow.
    await new Promise((r) => setTimeout(r, 0));
    await db.flush();
    assert.ok(namedTables(dir) >= 1, "manifest names the table");
    await db.close();
    const again = await LsmStore.open(dir, { memtableBytes: 8 * 1024 });
    for (let i = 0; i < n; i++) {
      assert.equal(
        dec.decode((await again.get(key(i)))!),
        dec.decode(value(i)),
      );
    }
    await again.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a store that must wait for its writes (GFS) installs a flushed table only after they complete, as before", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-lsm-flushwait-" });
  try {
    const files = await LocalFileStore.open(join(dir, "tables"));
    const db = await LsmStore.open(dir, {
      files: waitingStore(files),
      memtableBytes: 8 * 1024,
      sync: "never",
    });
    const i = await fillOneMemtable(db, 8 * 1024);
    assert.equal(db.stats().tables, 0, "no table before the I/O completes");
    // The frozen memtable answers meanwhile.
    for (let j = 0; j < i; j++) {
      assert.equal(dec.decode((await db.get(key(j)))!), dec.decode(value(j)));
    }
    await db.flush();
    assert.ok(db.stats().tables >= 1);
    assert.ok(namedTables(dir) >= 1);
    await db.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a table read before it is durable is never named when its sync fails: the store fails, the log keeps every write", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-lsm-flushfail-" });
  try {
    const files = await LocalFileStore.open(join(dir, "tables"));
    const failing: FileStore = {
      ...waitingStore(files),
      writeNow: (name, bytes) => {
        const w = files.writeNow(name, bytes);
        return {
          file: w.file,
          sync: async () => {
            await w.sync();
            throw new Error("injected: fdatasync failed");
          },
        };
      },
    };
    const db = await LsmStore.open(dir, {
      files: failing,
      memtableBytes: 8 * 1024,
      sync: "never",
    });
    const n = await fillOneMemtable(db, 8 * 1024);
    assert.equal(db.stats().tables, 1);
    await assert.rejects(
      db.flush(),
      (e) => isLsmError(e) || e instanceof Error,
    );
    assert.equal(namedTables(dir), 0, "a table whose sync failed is not named");
    await assert.rejects(
      db.put(key(n), value(n)),
      (e) => isLsmError(e) && e.code === "failed",
    );
    await db.close();
    // Reopened: the unnamed file is deleted, the log replays every write.
    const again = await LsmStore.open(dir, { memtableBytes: 1 << 20 });
    assert.equal(again.stats().tables, 0);
    assert.deepEqual(
      (await Array.fromAsync(Deno.readDir(join(dir, "tables"))))
        .filter((e) => e.name.endsWith(".sst")),
      [],
    );
    for (let i = 0; i < n; i++) {
      assert.equal(
        dec.decode((await again.get(key(i)))!),
        dec.decode(value(i)),
      );
    }
    await again.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
