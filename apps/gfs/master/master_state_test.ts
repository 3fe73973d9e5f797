import assert from "node:assert/strict";
import fc from "fast-check";
import { isGfsError } from "../shared/gfs_error.ts";
import {
  decodeOp,
  encodeOp,
  type MasterOp,
  MasterState,
} from "./master_state.ts";

function snapshotOf(s: MasterState): unknown {
  return {
    files: [...s.namespace.entries()].sort(([a], [b]) => (a < b ? -1 : 1)),
    chunks: [...s.chunks.values()].sort((a, b) => a.handle - b.handle),
    nextFileId: s.nextFileId,
    nextHandle: s.nextHandle,
  };
}

Deno.test("a pending upload is invisible until complete, then readable", () => {
  const s = new MasterState();
  const c = s.apply({
    t: "create",
    path: "/f",
    mode: "upload",
    replication: 3,
    now: 1,
  });
  assert.equal(c.t, "create");
  const id = c.t === "create" ? c.fileId : 0;
  s.apply({ t: "allocate", path: "/f", fileId: id, index: 0, now: 2 });
  assert.equal(s.visibleFile("/f"), undefined);
  s.apply({ t: "complete", path: "/f", fileId: id, lengths: [10], now: 3 });
  assert.equal(s.visibleFile("/f")?.length, 10);
});

Deno.test("a create with firstChunk allocates chunk 0 in the same op, as create then allocate would", () => {
  const one = new MasterState();
  const r = one.apply({
    t: "create",
    path: "/f",
    mode: "upload",
    replication: 3,
    now: 1,
    firstChunk: true,
  });
  const two = new MasterState();
  const c = two.apply({
    t: "create",
    path: "/f",
    mode: "upload",
    replication: 3,
    now: 1,
  });
  assert.ok(c.t === "create" && c.handle === undefined);
  const a = two.apply({
    t: "allocate",
    path: "/f",
    fileId: c.fileId,
    index: 0,
    now: 1,
  });
  assert.ok(r.t === "create" && a.t === "allocate");
  assert.equal(r.handle, a.handle);
  assert.deepEqual(snapshotOf(one), snapshotOf(two));
  assert.equal(one.visibleFile("/f"), undefined);
});

Deno.test("delete hides a file in the trash, undelete restores it, purge drops its chunks", () => {
  const s = new MasterState();
  s.apply({
    t: "create",
    path: "/log",
    mode: "append",
    replication: 2,
    now: 1,
  });
  s.apply({ t: "allocate", path: "/log", fileId: 1, index: 0, now: 1 });
  const d = s.apply({ t: "delete", path: "/log", now: 50 });
  assert.equal(s.visibleFile("/log"), undefined);
  const trash = d.t === "delete" ? d.trashPath : "";
  assert.equal(trash, "/.trash/50/log");
  s.apply({ t: "undelete", trashPath: trash, now: 60 });
  assert.ok(s.visibleFile("/log"));
  s.apply({ t: "delete", path: "/log", now: 70 });
  const p = s.apply({ t: "purge", path: "/.trash/70/log" });
  assert.deepEqual(p, { t: "purge", chunks: [1] });
  assert.equal(s.chunks.size, 0);
});

Deno.test("invalid operations throw and change nothing", () => {
  const s = new MasterState();
  s.apply({
    t: "create",
    path: "/a/b",
    mode: "upload",
    replication: 3,
    now: 1,
  });
  const before = JSON.stringify(snapshotOf(s));
  assert.throws(
    () =>
      s.apply({
        t: "create",
        path: "/a",
        mode: "upload",
        replication: 3,
        now: 2,
      }),
    (e) => isGfsError(e, "conflict"),
  );
  assert.throws(
    () =>
      s.apply({
        t: "create",
        path: "/a/b/c",
        mode: "upload",
        replication: 3,
        now: 2,
      }),
    (e) => isGfsError(e, "conflict"),
  );
  assert.throws(
    () => s.apply({ t: "delete", path: "/a/b", now: 3 }),
    (e) => isGfsError(e, "not_found"),
  );
  assert.equal(JSON.stringify(snapshotOf(s)), before);
});

const opArb: fc.Arbitrary<MasterOp> = fc.oneof(
  fc.record({
    t: fc.constant("create" as const),
    path: fc.constantFrom("/a", "/b", "/d/x", "/d/y", "/d"),
    mode: fc.constantFrom("upload" as const, "append" as const),
    replication: fc.integer({ min: 1, max: 3 }),
    now: fc.nat(1000),
    firstChunk: fc.boolean(),
  }),
  fc.record({
    t: fc.constant("allocate" as const),
    path: fc.constantFrom("/a", "/b", "/d/x"),
    fileId: fc.integer({ min: 1, max: 6 }),
    index: fc.nat(2),
    now: fc.nat(1000),
  }),
  fc.record({
    t: fc.constant("complete" as const),
    path: fc.constantFrom("/a", "/b", "/d/x"),
    fileId: fc.integer({ min: 1, max: 6 }),
    lengths: fc.array(fc.nat(100), { maxLength: 3 }),
    now: fc.nat(1000),
  }),
  fc.record({
    t: fc.constant("delete" as const),
    path: fc.constantFrom("/a", "/b", "/d/x"),
    now: fc.nat(1000),
  }),
  fc.record({
    t: fc.constant("bumpVersion" as const),
    handle: fc.integer({ min: 1, max: 6 }),
    version: fc.integer({ min: 1, max: 5 }),
  }, { requiredKeys: ["t", "handle", "version"] }).chain((op) =>
    fc.option(fc.subarray(["a", "b", "c"]), { nil: undefined }).map((r) =>
      r === undefined ? op : { ...op, replicas: r }
    )
  ),
  fc.record({
    t: fc.constant("replicas" as const),
    handle: fc.integer({ min: 1, max: 6 }),
    version: fc.integer({ min: 1, max: 5 }),
    servers: fc.subarray(["a", "b", "c", "d"]),
    add: fc.boolean(),
  }),
  fc.record({
    t: fc.constant("abandon" as const),
    path: fc.constantFrom("/a", "/b"),
    fileId: fc.integer({ min: 1, max: 6 }),
  }),
);

Deno.test("replaying the op log from any checkpoint gives the same state", () => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 60 }), fc.nat(60), (ops, cut) => {
      const live = new MasterState();
      const log: Uint8Array[] = [];
      let checkpoint: Uint8Array | null = null;
      let checkpointAt = 0;
      ops.forEach((op, i) => {
        log.push(encodeOp(op));
        try {
          live.apply(op);
        } catch (e) {
          assert.ok(isGfsError(e));
        }
        if (i + 1 === cut) {
          checkpoint = live.encode();
          checkpointAt = i + 1;
        }
      });
      const replica = checkpoint
        ? MasterState.decode(checkpoint)
        : new MasterState();
      for (const rec of log.slice(checkpointAt)) {
        try {
          replica.apply(decodeOp(rec));
        } catch (e) {
          assert.ok(isGfsError(e));
        }
      }
      assert.deepEqual(snapshotOf(replica), snapshotOf(live));
    }),
    { numRuns: 300 },
  );
});

Deno.test("a chunk version's replica set: a bump sets it, replicas ops set or extend it at that version only, an adopted bump leaves it untracked", () => {
  const s = new MasterState();
  const c = s.apply({
    t: "create",
    path: "/log",
    mode: "append",
    replication: 3,
    now: 1,
  });
  const id = c.t === "create" ? c.fileId : 0;
  const a = s.apply({
    t: "allocate",
    path: "/log",
    fileId: id,
    index: 0,
    now: 2,
  });
  const h = a.t === "allocate" ? a.handle : 0;
  assert.equal(s.chunks.get(h)!.replicas, null);
  // Extending an untracked set leaves it untracked (every replica counts).
  s.apply({ t: "replicas", handle: h, version: 1, servers: ["x"], add: true });
  assert.equal(s.chunks.get(h)!.replicas, null);
  s.apply({
    t: "replicas",
    handle: h,
    version: 1,
    servers: ["a", "b"],
    add: false,
  });
  s.apply({ t: "replicas", handle: h, version: 1, servers: ["c"], add: true });
  assert.deepEqual(s.chunks.get(h)!.replicas, ["a", "b", "c"]);
  assert.throws(
    () =>
      s.apply({
        t: "replicas",
        handle: h,
        version: 2,
        servers: ["d"],
        add: true,
      }),
    (e) => isGfsError(e, "stale"),
  );
  s.apply({ t: "bumpVersion", handle: h, version: 2, replicas: ["b", "c"] });
  assert.deepEqual(s.chunks.get(h)!.replicas, ["b", "c"]);
  const copy = MasterState.decode(s.encode());
  assert.deepEqual(copy.chunks.get(h), s.chunks.get(h));
  s.apply({ t: "bumpVersion", handle: h, version: 3 });
  assert.equal(s.chunks.get(h)!.replicas, null);
  assert.deepEqual(
    decodeOp(
      encodeOp({ t: "bumpVersion", handle: h, version: 4, replicas: ["a"] }),
    ),
    { t: "bumpVersion", handle: h, version: 4, replicas: ["a"] },
  );
});
