import assert from "node:assert/strict";
import { join } from "node:path";
import { compactToSnapshot } from "./snapshot_compaction.ts";
import { SegmentedLog } from "./segmented_log.ts";
import { type SnapshotMeta, SnapshotStore } from "./snapshot_store.ts";
import { isStorageError } from "./storage_error.ts";

const config = { voters: ["a", "b", "c"], learners: [] };

function meta(index: number, term = 1): SnapshotMeta {
  return {
    lastIncludedIndex: index,
    lastIncludedTerm: term,
    configuration: config,
  };
}

function state(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * seed + 7) & 0xff);
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "strata-snap-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a snapshot streamed in chunks loads back with its metadata and state", async () => {
  await withDir(async (dir) => {
    const store = await SnapshotStore.open(dir);
    try {
      const big = state(3 * 2 ** 20 + 17, 3);
      const chunks = async function* () {
        for (let o = 0; o < big.length; o += 65536) {
          yield big.subarray(o, o + 65536);
        }
      };
      const saved = await store.save(meta(42, 3), chunks());
      assert.equal(saved.bytes > big.length, true);
      const { snapshot, skipped } = await store.loadNewest();
      assert.deepEqual(skipped, []);
      assert.ok(snapshot);
      assert.deepEqual(snapshot.meta, meta(42, 3));
      assert.equal(snapshot.stateBytes, big.length);
      assert.deepEqual(await snapshot.readState(), big);
      let total = 0;
      for await (const c of snapshot.stateChunks(1000_000)) {
        assert.ok(c.length <= 1000_000);
        total += c.length;
      }
      assert.equal(total, big.length);
    } finally {
      store.close();
    }
  });
});

Deno.test("the store keeps the newest N snapshots", async () => {
  await withDir(async (dir) => {
    const store = await SnapshotStore.open(dir, { keep: 2 });
    try {
      for (const i of [10, 20, 30, 40]) {
        await store.save(meta(i), state(100, i));
      }
      const names = await store.list();
      assert.equal(names.length, 2);
      const { snapshot } = await store.loadNewest();
      assert.equal(snapshot?.meta.lastIncludedIndex, 40);
    } finally {
      store.close();
    }
  });
});

Deno.test("damaged and incomplete snapshots are skipped and reported, the newest valid one loads", async () => {
  await withDir(async (dir) => {
    const store = await SnapshotStore.open(dir, { keep: 5 });
    const names: string[] = [];
    for (const i of [1, 2, 3]) {
      names.push((await store.save(meta(i), state(5000, i))).file);
    }
    store.close();
    // Newest: truncated. Middle: one flipped bit.
    const newest = join(dir, names[2]!);
    const bytes = await Deno.readFile(newest);
    await Deno.writeFile(newest, bytes.subarray(0, bytes.length - 100));
    const middle = join(dir, names[1]!);
    const mid = await Deno.readFile(middle);
    mid[2000]! ^= 0x04;
    await Deno.writeFile(middle, mid);
    // An interrupted save's temporary file.
    await Deno.writeFile(
      join(dir, `.${names[2]}.tmp-1-abc`),
      new Uint8Array(9),
    );

    const again = await SnapshotStore.open(dir, { keep: 5 });
    try {
      assert.equal(again.incomplete.length, 1);
      const { snapshot, skipped } = await again.loadNewest();
      assert.equal(snapshot?.meta.lastIncludedIndex, 1);
      assert.deepEqual(await snapshot?.readState(), state(5000, 1));
      assert.deepEqual(skipped.map((s) => s.file), [names[2], names[1]]);
      assert.match(skipped[0]!.reason, /incomplete/);
      assert.match(skipped[1]!.reason, /checksum/);
    } finally {
      again.close();
    }
  });
});

Deno.test("invalid metadata is refused with a typed error", async () => {
  await withDir(async (dir) => {
    const store = await SnapshotStore.open(dir);
    try {
      await assert.rejects(
        store.save({ ...meta(1), lastIncludedIndex: -1 }, new Uint8Array(1)),
        (e) => isStorageError(e, "bad_argument"),
      );
      assert.deepEqual(await store.list(), []);
    } finally {
      store.close();
    }
  });
});

Deno.test("begin snapshot, roll, save, compact: the log never loses an entry the snapshot does not cover", async () => {
  await withDir(async (dir) => {
    const log = await SegmentedLog.open(join(dir, "log"), {
      segmentBytes: 2048,
    });
    const store = await SnapshotStore.open(join(dir, "snap"));
    try {
      for (let i = 1; i <= 200; i++) await log.append([state(40, i)]);
      assert.equal(await compactToSnapshot(log, store), null);
      const rolledAt = await log.beginSnapshot();
      // Appends continue while the snapshot is written.
      await log.append([state(40, 201)]);
      await store.save(meta(rolledAt - 1, 2), state(1000, 1));
      const r = await compactToSnapshot(log, store);
      assert.ok(r);
      assert.equal(r.snapshotIndex, 200);
      assert.equal(log.firstIndex, 201);
      assert.ok(r.removedSegments > 0);
      // A snapshot through 150 after that removes nothing more.
      const older = await log.compactPrefix(150);
      assert.equal(older.removedSegments, 0);
      assert.deepEqual(await log.read(201, 202), [state(40, 201)]);
    } finally {
      await log.close();
      store.close();
    }
  });
});
