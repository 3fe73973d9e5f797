import assert from "node:assert/strict";
import { join } from "node:path";
import fc from "fast-check";
import {
  isStorageError,
  RECORD_OVERHEAD_BYTES,
  SegmentedLog,
} from "@strata/storage";
import { APPEND_HEADER_BYTES } from "./append_record.ts";
import { BLOCK_BYTES, ChunkStore } from "./chunk_store.ts";
import { isGfsError } from "../shared/gfs_error.ts";

const CHUNK = 4 * BLOCK_BYTES;
/** Small journal segments: a store's first segment is preallocated. */
const SEGMENT = 1 << 20;

function fill(len: number, seed: number): Uint8Array {
  return new Uint8Array(len).map((_, i) => (i * 31 + seed * 7 + 1) % 251);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

async function segmentFile(dir: string): Promise<string> {
  const names: string[] = [];
  for await (const e of Deno.readDir(join(dir, "journal"))) {
    if (e.name.endsWith(".seg")) names.push(e.name);
  }
  assert.equal(names.length, 1, "one journal segment");
  return join(dir, "journal", names[0]!);
}

Deno.test("appended records survive a crash at any point of the journal's tail: whole records up to the damage, nothing after; a damaged record before an intact one is refused as corruption", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.tuple(
          fc.integer({ min: 1, max: 3 }),
          fc.integer({ min: 1, max: 5000 }),
        ),
        { minLength: 1, maxLength: 12 },
      ),
      fc.constantFrom("truncate", "flip", "garbage"),
      fc.double({ min: 0, max: 1, noNaN: true }),
      async (appends, damage, where) => {
        const dir = await Deno.makeTempDir();
        const opts = {
          chunkBytes: CHUNK,
          sync: "never" as const,
          journalSegmentBytes: SEGMENT,
          checkpointEvery: 1e9,
        };
        try {
          const store = await ChunkStore.open(dir, opts);
          // Each record's end in the journal: appends are the only records
          // (an empty chunk is not journaled, and no tail reaches a fold).
          const done: { h: number; data: Uint8Array; end: number }[] = [];
          let pos = 0;
          for (const [k, [h, len]] of appends.entries()) {
            if (store.meta(h) === undefined) await store.setVersion(h, 1, true);
            const data = fill(len, k);
            const at = store.meta(h)!.length;
            assert.equal(await store.write(h, 1, at, data), at + len);
            pos += RECORD_OVERHEAD_BYTES + APPEND_HEADER_BYTES + len;
            done.push({ h, data, end: pos });
          }
          assert.equal(store.unfoldedBytes, pos - done.length * 41);
          await store.close();
          const seg = await segmentFile(dir);
          const bytes = await Deno.readFile(seg);
          assert.ok(
            bytes.subarray(pos).every((b) => b === 0),
            "data ends at pos",
          );
          const t = Math.floor(where * pos);
          if (damage === "truncate") {
            await Deno.truncate(seg, t);
          } else if (damage === "flip") {
            const f = Math.min(t, pos - 1);
            bytes[f]! ^= 0x5a;
            await Deno.writeFile(seg, bytes);
          } else {
            // A torn write after the last record: some of a record's bytes.
            bytes.set(
              fill(Math.min(100, bytes.length - pos), 9).map((b) => b | 1),
              pos,
            );
            await Deno.writeFile(seg, bytes);
          }
          const cut = damage === "garbage"
            ? pos
            : damage === "flip"
            ? Math.min(t, pos - 1)
            : t;
          const kept = done.filter((r) => r.end <= cut);
          if (damage === "flip" && kept.length < done.length - 1) {
            // A damaged record with an intact one after it is corruption,
            // not a torn write: the journal (a SegmentedLog) refuses to
            // open rather than drop the acknowledged records after it.
            await assert.rejects(
              ChunkStore.open(dir, opts),
              (e: unknown) =>
                isStorageError(e) && e.code === "corrupt" &&
                /is intact, so this is corruption/.test(e.message),
            );
            return;
          }
          const again = await ChunkStore.open(dir, opts);
          try {
            for (const h of [1, 2, 3]) {
              const mine = kept.filter((r) => r.h === h).map((r) => r.data);
              if (mine.length === 0) {
                assert.equal(again.meta(h), undefined, `chunk ${h} absent`);
                continue;
              }
              const want = concat(mine);
              assert.equal(again.meta(h)!.length, want.length);
              assert.deepEqual(await again.read(h, 0, CHUNK, 1), want);
            }
            // The cut journal takes appends again, and they survive too.
            const h = kept[0]?.h ?? 1;
            if (again.meta(h) === undefined) await again.setVersion(h, 1, true);
            const len = again.meta(h)!.length;
            await again.write(h, 1, len, fill(10, 42));
            await again.close();
            const third = await ChunkStore.open(dir, opts);
            assert.deepEqual(await third.read(h, len, 10), fill(10, 42));
            await third.close();
          } catch (e) {
            await again.close().catch(() => {});
            throw e;
          }
        } finally {
          await Deno.remove(dir, { recursive: true });
        }
      },
    ),
    { numRuns: 12 },
  );
});

type Op =
  | { op: "append"; h: number; len: number }
  | { op: "write"; h: number; at: number; len: number }
  | { op: "bump"; h: number }
  | { op: "fold"; h: number }
  | { op: "delete"; h: number }
  | { op: "checkpoint" }
  | { op: "reopen" };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant("append" as const),
      h: fc.integer({ min: 1, max: 3 }),
      len: fc.integer({ min: 1, max: 30_000 }),
    }),
  },
  fc.record({
    op: fc.constant("write" as const),
    h: fc.integer({ min: 1, max: 3 }),
    at: fc.nat(CHUNK - 1),
    len: fc.integer({ min: 1, max: 100_000 }),
  }),
  fc.record({
    op: fc.constant("bump" as const),
    h: fc.integer({ min: 1, max: 3 }),
  }),
  fc.record({
    op: fc.constant("fold" as const),
    h: fc.integer({ min: 1, max: 3 }),
  }),
  fc.record({
    op: fc.constant("delete" as const),
    h: fc.integer({ min: 1, max: 3 }),
  }),
  fc.constant({ op: "checkpoint" as const }),
  { weight: 2, arbitrary: fc.constant({ op: "reopen" as const }) },
);

Deno.test("journaled appends mixed with block writes, folds, version bumps, deletes, checkpoints and reopens read back like a model", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(opArb, { minLength: 1, maxLength: 25 }),
      fc.integer({ min: 3, max: 40 }),
      async (ops, checkpointEvery) => {
        const dir = await Deno.makeTempDir();
        const opts = {
          chunkBytes: CHUNK,
          sync: "never" as const,
          journalSegmentBytes: SEGMENT,
          checkpointEvery,
        };
        const model = new Map<number, { version: number; bytes: Uint8Array }>();
        let store = await ChunkStore.open(dir, opts);
        try {
          for (const [k, o] of ops.entries()) {
            if (o.op === "reopen") {
              await store.close();
              store = await ChunkStore.open(dir, opts);
              // An empty chunk is not journaled: it is gone after a reopen.
              for (const [h, c] of model) {
                if (c.bytes.length === 0) model.delete(h);
              }
              continue;
            }
            if (o.op === "checkpoint") {
              await store.checkpoint();
              continue;
            }
            let c = model.get(o.h);
            if (o.op === "delete") {
              await store.delete(o.h);
              model.delete(o.h);
              continue;
            }
            if (c === undefined) {
              await store.setVersion(o.h, 1, true);
              model.set(o.h, c = { version: 1, bytes: new Uint8Array(0) });
            }
            if (o.op === "bump") {
              await store.setVersion(o.h, ++c.version, false);
            } else if (o.op === "fold") {
              await store.verify(o.h);
            } else {
              const at = o.op === "append" ? c.bytes.length : o.at;
              const len = Math.min(o.len, CHUNK - at);
              if (len <= 0) continue;
              const data = fill(len, k);
              await store.write(o.h, c.version, at, data);
              const next = new Uint8Array(Math.max(c.bytes.length, at + len));
              next.set(c.bytes);
              next.set(data, at);
              c.bytes = next;
            }
          }
          await store.close();
          store = await ChunkStore.open(dir, opts);
          for (const [h, c] of model) {
            if (c.bytes.length === 0) continue;
            assert.deepEqual(store.meta(h), {
              handle: h,
              version: c.version,
              length: c.bytes.length,
            });
            assert.deepEqual(await store.read(h, 0, CHUNK), c.bytes);
            const parts = await store.readParts(h, 1000, 100_000);
            assert.deepEqual(concat(parts), c.bytes.subarray(1000, 101_000));
          }
          const held = store.list().map(([h]) => h).sort();
          const want = [...model].filter(([, c]) => c.bytes.length > 0).map((
            [h],
          ) => h).sort();
          assert.deepEqual(held, want);
        } finally {
          await store.close().catch(() => {});
          await Deno.remove(dir, { recursive: true });
        }
      },
    ),
    { numRuns: 12 },
  );
});

Deno.test("a fold cut short after its blocks, before its metadata, loses no appended byte", async () => {
  const dir = await Deno.makeTempDir();
  const opts = { chunkBytes: CHUNK, journalSegmentBytes: SEGMENT };
  try {
    let store = await ChunkStore.open(dir, opts);
    await store.setVersion(5, 2, true);
    const big = fill(BLOCK_BYTES + 4000, 1);
    await store.write(5, 2, 0, big); // blocks: 64 KiB + 4000 B
    const small = fill(300, 2);
    await store.write(5, 2, big.length, small); // journaled
    assert.equal(store.unfoldedBytes, 300);
    await store.verify(5); // folds: a longer block 1, then a metadata record
    assert.equal(store.unfoldedBytes, 0);
    await store.close();
    // The crash: the fold's metadata record never reached the disk.
    const log = await SegmentedLog.open(join(dir, "journal"), {
      segmentBytes: SEGMENT,
    });
    await log.truncateSuffix(log.lastIndex);
    await log.close();
    store = await ChunkStore.open(dir, opts);
    assert.equal(store.unfoldedBytes, 300, "the append is back in the tail");
    const want = concat([big, small]);
    assert.deepEqual(await store.read(5, 0, CHUNK, 2), want);
    await store.verify(5);
    await store.close();
    store = await ChunkStore.open(dir, opts);
    assert.deepEqual(await store.read(5, 0, CHUNK, 2), want);
    await store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("journaled bytes are the store's own copy, and a damaged journal record is cut, never read back", async () => {
  const dir = await Deno.makeTempDir();
  const opts = {
    chunkBytes: CHUNK,
    sync: "never" as const,
    journalSegmentBytes: SEGMENT,
  };
  try {
    const store = await ChunkStore.open(dir, opts);
    await store.setVersion(1, 1, true);
    // The store keeps a view of the journal record, not of this buffer.
    const data = fill(500, 3);
    await store.write(1, 1, 0, data);
    data.fill(0);
    assert.deepEqual(await store.read(1, 0, 500), fill(500, 3));
    await store.close();
    const seg = await segmentFile(dir);
    const bytes = await Deno.readFile(seg);
    const at = RECORD_OVERHEAD_BYTES - 4 + APPEND_HEADER_BYTES + 10;
    bytes[at]! ^= 1;
    await Deno.writeFile(seg, bytes);
    // The log's own CRC catches a flipped data byte: the record is cut as
    // a damaged tail (and the chunk, never journaled otherwise, is gone).
    const again = await ChunkStore.open(dir, opts);
    await assert.rejects(
      again.read(1, 0, 10),
      (e) => isGfsError(e, "not_found"),
    );
    await again.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
