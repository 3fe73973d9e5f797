import assert from "node:assert/strict";
import { compactToSnapshot, SegmentedLog, SnapshotStore } from "./mod.ts";

Deno.test("the module example runs: append, read, snapshot and compact", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const log = await SegmentedLog.open(`${dir}/log`, {
      segmentBytes: 1 << 20,
    });
    const { first, last } = await log.append([new TextEncoder().encode("x=1")]);
    assert.deepEqual(await log.read(first, last + 1), [
      new TextEncoder().encode("x=1"),
    ]);
    const store = await SnapshotStore.open(`${dir}/snapshots`);
    const upTo = (await log.beginSnapshot()) - 1;
    await store.save({
      lastIncludedIndex: upTo,
      lastIncludedTerm: 1,
      configuration: { voters: ["n1"], learners: [] },
    }, new TextEncoder().encode("state"));
    const r = await compactToSnapshot(log, store);
    assert.equal(r?.firstIndex, 2);
    await log.close();
    store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
