import assert from "node:assert/strict";
import { cacheTabletOpener, HandoverPendingError } from "./cache_storage.ts";
import { localSnapshotStore } from "./snapshot_store.ts";
import { MemoryTablet } from "./memory_tablet.ts";
import { decodeSnapshot, encodeSnapshot } from "./snapshot_codec.ts";
import type { TabletOwner } from "./cache_storage.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const all = { start: new Uint8Array(0), end: null };
const schema = (storage: string, snapshotMs?: number) =>
  ({
    name: "c",
    families: [{ name: "v" }],
    storage,
    ...(snapshotMs ? { snapshotMs } : {}),
  }) as never;

/** An opener on a temp dir; `live` lists the sessions still alive. */
async function setup() {
  const root = await Deno.makeTempDir();
  const live = new Set<number>();
  const opener = (session: number) =>
    cacheTabletOpener(() => Promise.reject(new Error("no disk here")), {
      store: localSnapshotStore(root),
      self: () => ({ server: `s${session}`, session }),
      isLive: (o: TabletOwner) => Promise.resolve(live.has(o.session)),
      log: () => {},
    });
  return { root, live, opener };
}

const put = (t: MemoryTablet, k: string, v: string, deadline = 0) =>
  t.setValue(k, enc.encode(v), deadline);
const get = (t: MemoryTablet, k: string) => {
  const v = t.getValue(k, Date.now());
  return v && dec.decode(v);
};

Deno.test("memory mode: an orderly close hands the rows over; a crash (discard) loses them", async () => {
  const { root, live, opener } = await setup();
  try {
    live.add(1);
    const a = await opener(1)("c/t1", schema("memory"), all) as MemoryTablet;
    put(a, "k1", "one");
    put(a, "k2", "two", Date.now() + 60_000);
    // Another server may not open it while the first is live and holds it.
    live.add(2);
    await assert.rejects(
      opener(2)("c/t1", schema("memory"), all),
      HandoverPendingError,
    );
    await a.close(); // the move's close: snapshot + marker removed
    const b = await opener(2)("c/t1", schema("memory"), all) as MemoryTablet;
    assert.equal(get(b, "k1"), "one");
    assert.ok(b.deadlineOf("k2", Date.now())! > Date.now());
    put(b, "k3", "three");
    b.discard(); // server 2 crashes
    live.delete(2);
    const c = await opener(3)("c/t1", schema("memory"), all) as MemoryTablet;
    assert.equal(c.rowCount, 0, "memory mode comes back empty after a crash");
    await c.close();
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("write-behind mode: a crash loses at most the last interval", async () => {
  const { root, live, opener } = await setup();
  try {
    live.add(1);
    const a = await opener(1)(
      "c/t2",
      schema("write-behind", 100),
      all,
    ) as MemoryTablet;
    for (let i = 0; i < 50; i++) put(a, `k${i}`, `v${i}`);
    // Several intervals pass: the rows are in a snapshot.
    await new Promise((r) => setTimeout(r, 600));
    a.discard();
    live.delete(1);
    const b = await opener(2)(
      "c/t2",
      schema("write-behind", 100),
      all,
    ) as MemoryTablet;
    assert.equal(b.rowCount, 50);
    assert.equal(get(b, "k49"), "v49");
    await b.close();
    const names = [...Deno.readDirSync(`${root}/c/t2`)].map((e) => e.name);
    assert.equal(names.filter((n) => n.startsWith("snap-")).length, 1);
    assert.ok(!names.includes("owner"));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("memory tablet: split copy, scanKeys, expiry sampling, snapshot codec", async () => {
  const t = new MemoryTablet(schema("memory"), all);
  const now = Date.now();
  for (let i = 0; i < 100; i++) {
    put(t, `k${String(i).padStart(3, "0")}`, `v${i}`, i < 40 ? now + 50 : 0);
  }
  const key = (await t.splitKey())!;
  const left = new MemoryTablet(schema("memory"), {
    start: new Uint8Array(0),
    end: key,
  });
  const right = new MemoryTablet(schema("memory"), { start: key, end: null });
  await t.copyTo(left, left.range);
  await t.copyTo(right, right.range);
  assert.equal(left.rowCount + right.rowCount, 100);
  // writeValue copies the caller's bytes (in place over a value of the
  // same length), and a split's copy does not share them.
  const buf = enc.encode("v99");
  t.writeValue("k099", buf, 0);
  buf.fill(0);
  assert.equal(get(t, "k099"), "v99");
  t.writeValue("k099", enc.encode("w99"), 0);
  assert.equal(get(t, "k099"), "w99");
  assert.equal(get(right, "k099"), "v99");
  t.writeValue("k099", enc.encode("v099"), 0);
  assert.equal(get(t, "k099"), "v099");
  const page = t.scanKeys("", 30, now);
  assert.equal(page.keys.length, 30);
  assert.equal(page.next, "k030");
  // After the deadline, sampling drops the 40 expiring keys.
  const later = now + 100;
  for (let i = 0; i < 10; i++) t.expireSome(later, 20);
  assert.equal(t.rowCount, 60);
  const round = decodeSnapshot(encodeSnapshot(t.rows(), t.lastTimestamp));
  assert.equal(round.rows.length, 60);
  assert.equal(round.rows[0]!.k.startsWith("k"), true);
  assert.throws(() =>
    decodeSnapshot(encodeSnapshot(t.rows(), 1).subarray(0, 50))
  );
  // The Tablet interface: a row mutation and read on the same rows.
  await t.mutateRow(enc.encode("k099"), [{
    op: "put",
    family: "v",
    qualifier: enc.encode("extra"),
    value: enc.encode("x"),
  }]);
  const row = await t.getRow(enc.encode("k099"));
  assert.equal(row?.cells.length, 2);
  await t.mutateRow(enc.encode("k099"), [{ op: "deleteRow" }]);
  assert.equal(await t.getRow(enc.encode("k099")), undefined);
});

Deno.test("memory mode: consistent reads as of a time (backups) are refused with compacted, not answered wrongly", async () => {
  const { root, live, opener } = await setup();
  try {
    live.add(1);
    const t = await opener(1)("c/t1", schema("memory"), all) as MemoryTablet;
    put(t, "k1", "one");
    await assert.rejects(
      t.holdSnapshot(Date.now(), 1000),
      (e: Error & { code?: string }) => e.code === "compacted",
    );
    const scan = t.scan({ asOf: Date.now(), consistent: true });
    await assert.rejects(
      scan.next(),
      (e: Error & { code?: string }) => e.code === "compacted",
    );
    t.discard();
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("memory tablet: keys set in one millisecond share it; one key's writes rise, whatever the call", async () => {
  const wall = { now: 2_000_000 };
  const t = new MemoryTablet(schema("memory"), all, { clock: () => wall.now });
  const stamp = async (k: string) =>
    (await t.getRow(enc.encode(k)))!.cells[0]!.timestamp;
  for (let i = 0; i < 2_000; i++) t.setValue(`k${i}`, enc.encode("x"), 0);
  assert.equal(await stamp("k1999"), 2_000_000, "not 2 s ahead");
  t.setValue("k5", enc.encode("y"), 0); // in place
  t.writeValue("k5", enc.encode("z"), 0);
  const m = await t.mutateRow(enc.encode("k5"), [{
    op: "put",
    family: "v",
    qualifier: new Uint8Array(0),
    value: enc.encode("w"),
    timestamp: 9e15, // explicit: moves no clock
  }]);
  const d = await t.mutateRow(enc.encode("k5"), [{ op: "deleteRow" }]);
  assert.deepEqual([await stamp("k1"), m.timestamp, d.timestamp], [
    2_000_000,
    2_000_003,
    2_000_004,
  ]);
  // The deletion hid what came before it, not the explicit later version.
  assert.equal(await stamp("k5"), 9e15);
  assert.equal(t.lastTimestamp, 2_000_004);
  await t.close();
});
