import assert from "node:assert/strict";
import { MasterStore } from "./master_store.ts";

Deno.test("the master state survives a reopen through the op log and checkpoints", async () => {
  const dir = await Deno.makeTempDir();
  try {
    let store = await MasterStore.open(dir, { checkpointEvery: 7 });
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
    const before = store.state.encode();
    const applied = store.appliedIndex;
    await store.close();
    store = await MasterStore.open(dir);
    assert.ok(store.recovery.checkpointIndex > 0, "a checkpoint was used");
    assert.equal(store.appliedIndex, applied);
    assert.deepEqual(store.state.encode(), before);
    assert.equal(store.state.visibleFile("/f0"), undefined);
    assert.equal(store.state.visibleFile("/f2")?.length, 2);
    assert.equal(
      store.state.visibleFile("/f1"),
      undefined,
      "pending stays invisible",
    );
    assert.equal(store.state.namespace.size, 20);
    await store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
