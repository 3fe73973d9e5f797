import assert from "node:assert/strict";
import { join } from "node:path";
import { OpLogStore } from "./_op_log_store.ts";
import { MIGRATED_OP_LOG_DIR } from "./op_log_migration.ts";
import { ReplicatedMasterStore } from "./replicated_master_store.ts";

/**
 * Writes a data directory with the former single master's op log: 20
 * files, each with an allocated chunk, every other one complete, one
 * deleted, one rejected op, and a checkpoint in the middle (so opening
 * needs both the checkpoint and the log after it).
 */
async function oldSingleMaster(
  dir: string,
): Promise<{ encoded: Uint8Array; applied: number }> {
  // Only the explicit checkpoint below: an automatic one in flight at the
  // end could cover the last ops and leave no log tail to replay.
  const store = await OpLogStore.open(dir, { checkpointEvery: 1_000 });
  try {
    for (let i = 0; i < 20; i++) {
      const c = await store.propose({
        t: "create",
        path: `/f${i}`,
        mode: "upload",
        replication: 3,
        now: i,
      });
      const id = c.t === "create" ? c.fileId : 0;
      await store.propose({
        t: "allocate",
        path: `/f${i}`,
        fileId: id,
        index: 0,
        now: i,
      });
      if (i % 2 === 0) {
        await store.propose({
          t: "complete",
          path: `/f${i}`,
          fileId: id,
          lengths: [i],
          now: i,
        });
      }
    }
    await assert.rejects(
      store.propose({
        t: "create",
        path: "/f1",
        mode: "upload",
        replication: 3,
        now: 99,
      }),
    );
    await store.checkpoint();
    await store.propose({ t: "delete", path: "/f0", now: 100 });
    await store.propose({
      t: "create",
      path: "/after-checkpoint",
      mode: "upload",
      replication: 3,
      now: 101,
    });
    return { encoded: store.state.encode(), applied: store.appliedIndex };
  } finally {
    await store.close();
  }
}

function assertAllThere(s: ReplicatedMasterStore): void {
  assert.equal(s.state.visibleFile("/f0"), undefined, "deleted stays deleted");
  assert.equal(s.state.visibleFile("/f2")?.length, 2);
  assert.equal(s.state.visibleFile("/f1"), undefined, "pending stays hidden");
  assert.equal(s.state.namespace.size, 21);
  assert.ok(s.state.namespace.get("/after-checkpoint"), "the log's tail");
  for (let i = 1; i < 20; i++) {
    const f = s.state.namespace.get(`/f${i}`);
    assert.ok(f, `/f${i}`);
    assert.equal(f.chunks.length, 1, `/f${i} keeps its chunk`);
  }
}

Deno.test("a former single master's op log and checkpoints migrate once into the one-member group's store", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { encoded, applied } = await oldSingleMaster(dir);
    let store = await ReplicatedMasterStore.open(dir, { id: 1 });
    try {
      assert.equal(store.migrated?.appliedIndex, applied);
      assert.ok(store.migrated.replayed > 0, "ops past the checkpoint");
      assert.equal(store.appliedIndex >= applied, true);
      assert.deepEqual(store.state.encode(), encoded);
      assertAllThere(store);
      assert.ok(store.serving(), "a master alone serves once open resolves");
      await store.propose({ t: "delete", path: "/f2", now: 200 });
    } finally {
      await store.close();
    }
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.ok(!names.includes("checkpoints"), names.join());
    assert.ok(names.includes(MIGRATED_OP_LOG_DIR), "the old files are kept");
    store = await ReplicatedMasterStore.open(dir, { id: 1 });
    try {
      assert.equal(store.migrated, undefined, "migrated only once");
      assert.equal(store.state.visibleFile("/f2"), undefined);
      assert.equal(store.state.visibleFile("/f4")?.length, 4);
      assert.ok(store.state.namespace.get("/after-checkpoint"));
    } finally {
      await store.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a migration interrupted before its last step starts over from the old files", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { encoded } = await oldSingleMaster(dir);
    // Interrupted after the old log moved aside: only that rename done.
    await Deno.rename(join(dir, "log"), join(dir, MIGRATED_OP_LOG_DIR));
    let store = await ReplicatedMasterStore.open(dir, { id: 1 });
    assert.deepEqual(store.state.encode(), encoded);
    await store.close();
    // Interrupted after the new store was written, before the checkpoints
    // moved into the kept directory (the step that marks it done).
    await Deno.rename(
      join(dir, MIGRATED_OP_LOG_DIR, "checkpoints"),
      join(dir, "checkpoints"),
    );
    store = await ReplicatedMasterStore.open(dir, { id: 1 });
    try {
      assert.ok(store.migrated, "migrated again");
      assert.deepEqual(store.state.encode(), encoded);
      assertAllThere(store);
    } finally {
      await store.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
