// An upload chunk's placement does not wait for the chunkservers' `version`
// calls (they run while the client gets the target); an append chunk's
// still does (its replica set is recorded from the answers). The RPCs are
// stubbed: each hangs until released, then answers as told.
import assert from "node:assert/strict";
import type { HeartbeatReport } from "./chunk_master.ts";
import { MasterService, type MasterSettings } from "./master_service.ts";
import { ReplicatedMasterStore } from "./replicated_master_store.ts";

const MiB = 2 ** 20;

/** setVersion waits for `release`, then answers false for `fail`. */
class HeldMaster extends MasterService {
  readonly fail = new Set<string>();
  readonly calls: string[] = [];
  readonly #waiting: (() => void)[] = [];

  override async setVersion(server: string): Promise<boolean> {
    this.calls.push(server);
    await new Promise<void>((r) => this.#waiting.push(r));
    return !this.fail.has(server);
  }

  release(): void {
    for (const r of this.#waiting.splice(0)) r();
  }
}

function report(id: string): HeartbeatReport {
  return {
    id,
    url: `http://${id}`,
    rack: "",
    capacityBytes: 100 * MiB,
    usedBytes: 0,
    load: 0,
    chunks: [],
    extend: [],
  };
}

async function withMaster(fn: (m: HeldMaster) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "strata-gfs-upload-place-" });
  const store = await ReplicatedMasterStore.open(dir, { id: 1 });
  const cfg: MasterSettings = {
    chunkBytes: MiB,
    replication: 3,
    maxFileBytes: 64 * MiB,
    deadAfterMs: 5000,
    leaseMs: 5000,
    tickMs: 200,
  };
  const m = new HeldMaster(cfg, store, {
    chunkBytes: MiB,
    deadAfterMs: 5000,
    leaseMs: 5000,
  });
  try {
    for (const id of ["a", "b", "c"]) m.core.heartbeat(report(id), Date.now());
    await fn(m);
  } finally {
    m.release();
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Creates `path` in `mode` and allocates its chunk 0: the new handle. */
async function newChunk(
  m: MasterService,
  path: string,
  mode: "upload" | "append",
): Promise<number> {
  await m.propose({ t: "create", path, mode, replication: 3, now: Date.now() });
  const f = m.store.state.namespace.get(path)!;
  const r = await m.propose({
    t: "allocate",
    path,
    fileId: f.id,
    index: 0,
    now: Date.now(),
  });
  assert.equal(r.t, "allocate");
  return r.t === "allocate" ? r.handle : 0;
}

const settled = (p: Promise<unknown>) =>
  Promise.race([
    p.then(() => true, () => true),
    new Promise<boolean>((r) => setTimeout(() => r(false), 200)),
  ]);

Deno.test("an upload chunk's target comes before the chunkservers answer; one that fails is then excluded", async () => {
  await withMaster(async (m) => {
    const handle = await newChunk(m, "/up", "upload");
    m.fail.add("http://c"); // whichever role it gets
    const placing = m.placeNew(handle, 3);
    assert.equal(await settled(placing), true, "answered while calls hang");
    const t = await placing;
    assert.deepEqual(
      [t.primary, ...t.secondaries].sort(),
      ["http://a", "http://b", "http://c"],
    );
    assert.equal(m.calls.length, 3, "every server is told");
    // The lease is recorded for the primary at once.
    assert.equal(
      `http://${m.core.leases.get(handle, Date.now())?.primary}`,
      t.primary,
    );
    assert.deepEqual([...m.core.locations.get(handle)!.keys()].sort(), [
      "a",
      "b",
      "c",
    ]);
    m.release();
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(
      [...m.core.locations.get(handle)!.keys()].sort(),
      ["a", "b"],
      "the server that failed its call holds no copy",
    );
  });
});

Deno.test("an append chunk's placement still waits for the chunkservers", async () => {
  await withMaster(async (m) => {
    const handle = await newChunk(m, "/log", "append");
    const placing = m.placeNew(handle, 3);
    assert.equal(await settled(placing), false, "waits for the answers");
    m.release();
    const t = await placing;
    assert.equal(t.secondaries.length, 2);
  });
});
