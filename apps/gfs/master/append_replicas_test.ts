// The master's side of record appends under failures, deterministically:
// the chunkserver RPCs of MasterService (setVersion) are stubbed, time is
// passed to the core, and the invariant checked is the one readers rely
// on: every replica the master lists at a chunk's current version is one
// that every acknowledged append of that version reached, i.e. a member of
// the lease's replica set.
import assert from "node:assert/strict";
import type { HeartbeatReport } from "./chunk_master.ts";
import { ChunkMaster } from "./chunk_master.ts";
import { MasterService, type MasterSettings } from "./master_service.ts";
import { ReplicatedMasterStore } from "./replicated_master_store.ts";
import type { ApplyResult, MasterOp } from "./master_state.ts";
import type { WriteTarget } from "../shared/messages.ts";

const MiB = 2 ** 20;
const LOG = "/log";

/** setVersion answers at once (true), or waits for `release` (then false). */
class StubbedMaster extends MasterService {
  readonly hang = new Set<string>();
  readonly fail = new Set<string>();
  readonly #waiting: (() => void)[] = [];

  override async setVersion(server: string): Promise<boolean> {
    if (this.fail.has(server)) return false;
    if (this.hang.has(server)) {
      await new Promise<void>((r) => this.#waiting.push(r));
      return false;
    }
    return true;
  }

  /** While set, a clone's admission (a `replicas` op) waits for it. */
  admissionGate: Promise<void> | null = null;

  override async propose(op: MasterOp): Promise<ApplyResult> {
    if (op.t === "replicas" && op.add && this.admissionGate !== null) {
      await this.admissionGate;
    }
    return await super.propose(op);
  }

  /** Lets every hung setVersion fail (the RPC timed out). */
  release(): void {
    for (const r of this.#waiting.splice(0)) r();
  }
}

function report(
  id: string,
  chunks: [number, number, number][] = [],
): HeartbeatReport {
  return {
    id,
    url: `http://${id}`,
    rack: "",
    capacityBytes: 100 * MiB,
    usedBytes: 0,
    load: 0,
    chunks,
    extend: [],
  };
}

async function cell(leaseMs: number) {
  const dir = await Deno.makeTempDir({ prefix: "strata-gfs-append-replicas-" });
  const store = await ReplicatedMasterStore.open(dir, { id: 1 });
  const cfg: MasterSettings = {
    chunkBytes: MiB,
    replication: 3,
    maxFileBytes: 64 * MiB,
    deadAfterMs: 5000,
    leaseMs,
    tickMs: 200,
  };
  const opts = { chunkBytes: MiB, deadAfterMs: 5000, leaseMs };
  const m = new StubbedMaster(cfg, store, opts);
  return {
    m,
    store,
    cfg,
    opts,
    /** A heartbeat through the route's steps (ops proposed). */
    async beat(svc: MasterService, r: HeartbeatReport, now: number) {
      const { ops } = svc.core.heartbeat(r, now);
      for (const op of ops) await svc.propose(op).catch(() => {});
    },
    async close() {
      await store.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** An append file with one chunk placed on 3 of 4 servers, leased. */
async function appendFile(m: MasterService): Promise<WriteTarget> {
  await m.propose({
    t: "create",
    path: LOG,
    mode: "append",
    replication: 3,
    now: Date.now(),
  });
  const f = m.store.state.namespace.get(LOG)!;
  const r = await m.propose({
    t: "allocate",
    path: LOG,
    fileId: f.id,
    index: 0,
    now: Date.now(),
  });
  assert.equal(r.t, "allocate");
  return await m.placeNew(r.t === "allocate" ? r.handle : 0, 3);
}

const members = (t: WriteTarget) => [t.primary, ...t.secondaries].sort();
const idOf = (url: string) => url.slice("http://".length);

/** Replica URLs the master lists for the log's last chunk, and its version. */
function listed(m: MasterService): { replicas: string[]; version: number } {
  const c = m.core.locate(LOG).chunks.at(-1)!;
  return { replicas: [...c.replicas].sort(), version: c.version };
}

Deno.test("a chunk whose primary is cut off is not cloned between its version bump and the new lease (the clone would miss the appends)", async () => {
  const c = await cell(5000);
  try {
    const { m } = c;
    const t0 = Date.now();
    for (const id of ["a", "b", "c", "d"]) await c.beat(m, report(id), t0);
    const t1 = await appendFile(m);
    const h = t1.handle;
    const victim = t1.primary;
    const others = members(t1).filter((u) => u !== victim);
    // Records landed on all three at version 1.
    for (const u of members(t1)) {
      await c.beat(m, report(idOf(u), [[h, 1, 500]]), t0);
    }
    // The primary is cut off: appends time out, the client asks for a new
    // lease (renew); the master's version RPC to the primary hangs.
    m.hang.add(victim);
    m.core.leases.revoke(h);
    const renewed = m.leaseFor(h);
    await new Promise((r) => setTimeout(r, 20));
    // Meanwhile the two others took version 2 and say so, and the cut
    // primary is declared dead.
    const later = Date.now() + 6000;
    for (const u of others) {
      await c.beat(m, report(idOf(u), [[h, 2, 500]]), later);
    }
    await c.beat(m, report("d"), later);
    const plan = m.core.tick(later);
    assert.deepEqual(plan.dead, [idOf(victim)]);
    for (const task of plan.clones) {
      // The clone copies a replica as it is now (500 bytes) and is done.
      await m.cloneFinished(
        task,
        true,
        m.store.state.chunks.get(h)!.version,
        500,
        later,
      );
      await c.beat(m, report(task.target, [[h, 2, 500]]), later);
    }
    m.release();
    const t2 = await renewed;
    assert.equal(t2.version, 2);
    assert.ok(!members(t2).includes(victim));
    // Appends now go to the new lease's replicas only; every replica the
    // master lists must be one of them.
    for (const u of members(t2)) {
      await c.beat(m, report(idOf(u), [[h, 2, 900]]), later);
    }
    for (const id of ["d"]) {
      const st = m.core.servers.get(id)!;
      if (!members(t2).includes(st.url)) {
        // A server outside the lease keeps what it had (a clone: 500 bytes).
        const had = m.core.locations.get(h)?.has(id) ? [[h, 2, 500]] : [];
        await c.beat(m, report(id, had as [number, number, number][]), later);
      }
    }
    const l = listed(m);
    assert.equal(l.version, t2.version);
    for (const u of l.replicas) {
      assert.ok(
        members(t2).includes(u),
        `${u} is listed at v${l.version} but the lease's appends go to ${
          members(t2)
        }`,
      );
    }
  } finally {
    await c.close();
  }
});

Deno.test("a lease handed out again keeps its replica set: a member that died since is still in it, so appends cannot be acknowledged without it", async () => {
  const c = await cell(60_000);
  try {
    const { m } = c;
    const t0 = Date.now();
    for (const id of ["a", "b", "c", "d"]) await c.beat(m, report(id), t0);
    const t1 = await appendFile(m);
    const h = t1.handle;
    const dead = t1.secondaries[0]!;
    // Everyone but `dead` keeps beating; `dead` is declared dead.
    const later = Date.now() + 6000;
    for (const id of ["a", "b", "c", "d"]) {
      if (`http://${id}` === dead) continue;
      const has = members(t1).includes(`http://${id}`);
      await c.beat(m, report(id, has ? [[h, 1, 300]] : []), later);
    }
    assert.deepEqual(m.core.tick(later).dead, [idOf(dead)]);
    // A new appender asks for the target (no failure seen: no renew).
    const t2 = await m.leaseFor(h);
    // Were `dead` left out, appends acknowledged on the rest at this same
    // version would be missing on it; when it comes back it reports that
    // version and would be listed.
    await c.beat(m, report(idOf(dead), [[h, t2.version, 300]]), later + 1);
    for (const u of members(t2)) {
      if (u !== dead) {
        await c.beat(m, report(idOf(u), [[h, t2.version, 800]]), later + 1);
      }
    }
    const l = listed(m);
    for (const u of l.replicas) {
      assert.ok(
        members(t2).includes(u),
        `${u} listed but not in ${members(t2)}`,
      );
    }
  } finally {
    await c.close();
  }
});

Deno.test("a replica left out of a version bump stays out after a master takeover, even if it took that version late", async () => {
  const c = await cell(60_000);
  try {
    const { m } = c;
    const t0 = Date.now();
    for (const id of ["a", "b", "c", "d"]) await c.beat(m, report(id), t0);
    const t1 = await appendFile(m);
    const h = t1.handle;
    const late = t1.secondaries[1]!;
    for (const u of members(t1)) {
      await c.beat(m, report(idOf(u), [[h, 1, 300]]), t0);
    }
    // Its version RPC times out: the bump to 2 goes on without it.
    m.fail.add(late);
    m.core.leases.revoke(h);
    const t2 = await m.leaseFor(h);
    assert.equal(t2.version, 2);
    assert.ok(!members(t2).includes(late));
    // A new master (a takeover, or a restart) over the same metadata: the
    // soft state is gone. The late replica took version 2 after all, but
    // missed the appends made without it.
    const m2 = new MasterService(c.cfg, c.store, c.opts);
    assert.notEqual(m2.core, m.core);
    assert.ok(m2.core instanceof ChunkMaster);
    const now = Date.now();
    for (const u of members(t2)) {
      await c.beat(m2, report(idOf(u), [[h, 2, 900]]), now);
    }
    await c.beat(m2, report(idOf(late), [[h, 2, 300]]), now);
    const l = m2.core.locate(LOG).chunks.at(-1)!;
    assert.ok(!l.replicas.includes(late), `${late} listed at v${l.version}`);
    assert.deepEqual([...l.replicas].sort(), members(t2));
  } finally {
    await c.close();
  }
});

Deno.test("an append chunk is copied only once no lease on it can be held, and the copy joins its replica set durably", async () => {
  const c = await cell(20_000);
  try {
    const { m } = c;
    const t0 = Date.now();
    for (const id of ["a", "b", "c", "d"]) await c.beat(m, report(id), t0);
    const t1 = await appendFile(m);
    const h = t1.handle;
    const gone = t1.secondaries[0]!;
    const spare = ["a", "b", "c", "d"].find((id) =>
      !members(t1).includes(`http://${id}`)
    )!;
    // A member dies while the chunk is leased; the client then asks for a
    // new lease, which is revoked here but its primary may still use it.
    const beatAll = async (now: number) => {
      for (const id of ["a", "b", "c", "d"]) {
        if (`http://${id}` === gone) continue;
        const has = members(t1).includes(`http://${id}`);
        await c.beat(m, report(id, has ? [[h, 1, 300]] : []), now);
      }
    };
    const later = t0 + 5500;
    await beatAll(later);
    m.core.leases.revoke(h);
    // Within the lease's time: no copy (the primary could still append).
    // Every master also assumes its predecessor's leases for a lease time.
    const first = m.core.tick(later);
    assert.deepEqual(first.dead, [idOf(gone)]);
    assert.deepEqual(first.clones, []);
    const quiet = t0 + 20_000 + 1000;
    await beatAll(quiet);
    const plan = m.core.tick(quiet);
    assert.deepEqual(plan.clones.map((t) => t.target), [spare]);
    // The copy's own heartbeat arrives while its admission is being logged:
    // it is not judged (not in the set yet) and so not deleted.
    let open = () => {};
    m.admissionGate = new Promise<void>((r) => open = r);
    const admitted = m.cloneFinished(plan.clones[0]!, true, 1, 300, quiet);
    await new Promise((r) => setTimeout(r, 20));
    const during = m.core.heartbeat(report(spare, [[h, 1, 300]]), quiet + 1);
    assert.deepEqual(during.reply.delete, []);
    open();
    await admitted;
    assert.ok(listed(m).replicas.includes(`http://${spare}`));
    const after = m.core.heartbeat(report(spare, [[h, 1, 300]]), quiet + 2);
    assert.deepEqual(after.reply.delete, []);
    assert.deepEqual(
      [...m.store.state.chunks.get(h)!.replicas!].sort(),
      [...members(t1).map(idOf), spare].sort(),
    );
    // A later master keeps listing the copy.
    const m2 = new MasterService(c.cfg, c.store, c.opts);
    for (const id of ["a", "b", "c", "d"]) {
      if (`http://${id}` === gone) continue;
      await c.beat(m2, report(id, [[h, 1, 300]]), Date.now());
    }
    assert.ok(
      m2.core.locate(LOG).chunks[0]!.replicas.includes(`http://${spare}`),
    );
  } finally {
    await c.close();
  }
});
