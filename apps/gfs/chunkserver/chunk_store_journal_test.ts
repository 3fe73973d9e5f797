import assert from "node:assert/strict";
import { join } from "node:path";
import fc from "fast-check";
import {
  isStorageError,
  RECORD_OVERHEAD_BYTES,
  SegmentedLog,
} from "@strata/storage";
import {
  APPEND_HEADER_BYTES,
  decodeAppend,
  isAppendRecord,
} from "./append_record.ts";
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

Deno.test("journaled appends mixed with block writes, folds, version bumps, deletes, checkpoints and reopens, some started before the last one finished, read back like a model", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(opArb, { minLength: 1, maxLength: 25 }),
      fc.integer({ min: 3, max: 40 }),
      // Per op: wait for it before starting the next, or let it overlap.
      fc.array(fc.boolean(), { minLength: 25, maxLength: 25 }),
      async (ops, checkpointEvery, waits) => {
        const dir = await Deno.makeTempDir();
        const opts = {
          chunkBytes: CHUNK,
          sync: "never" as const,
          journalSegmentBytes: SEGMENT,
          checkpointEvery,
          // Folds by size too, started while later appends are in flight.
          foldBytes: BLOCK_BYTES,
        };
        const model = new Map<number, { version: number; bytes: Uint8Array }>();
        let store = await ChunkStore.open(dir, opts);
        // Ops of a chunk run in call order (its queue), so the model is
        // updated at the call; overlapping ones are awaited together.
        let overlapping: Promise<unknown>[] = [];
        const run = async (k: number, p: Promise<unknown>) => {
          overlapping.push(p);
          if (!waits[k]) return;
          await Promise.all(overlapping);
          overlapping = [];
        };
        try {
          for (const [k, o] of ops.entries()) {
            if (o.op === "reopen") {
              await Promise.all(overlapping);
              overlapping = [];
              await store.close();
              store = await ChunkStore.open(dir, opts);
              // An empty chunk is not journaled: it is gone after a reopen.
              for (const [h, c] of model) {
                if (c.bytes.length === 0) model.delete(h);
              }
              continue;
            }
            if (o.op === "checkpoint") {
              await run(k, store.checkpoint());
              continue;
            }
            let c = model.get(o.h);
            if (o.op === "delete") {
              await run(k, store.delete(o.h));
              model.delete(o.h);
              continue;
            }
            if (c === undefined) {
              overlapping.push(store.setVersion(o.h, 1, true));
              model.set(o.h, c = { version: 1, bytes: new Uint8Array(0) });
            }
            if (o.op === "bump") {
              await run(k, store.setVersion(o.h, ++c.version, false));
            } else if (o.op === "fold") {
              await run(k, store.verify(o.h));
            } else {
              const at = o.op === "append" ? c.bytes.length : o.at;
              const len = Math.min(o.len, CHUNK - at);
              if (len <= 0) continue;
              const data = fill(len, k);
              const want = Math.max(c.bytes.length, at + len);
              await run(
                k,
                store.write(o.h, c.version, at, data).then((end) =>
                  assert.equal(end, want)
                ),
              );
              const next = new Uint8Array(Math.max(c.bytes.length, at + len));
              next.set(c.bytes);
              next.set(data, at);
              c.bytes = next;
            }
          }
          await Promise.all(overlapping);
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
  const opts = {
    chunkBytes: CHUNK,
    journalSegmentBytes: SEGMENT,
    foldBytes: BLOCK_BYTES,
  };
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

/** Each journaled append in journal order, with where its record ends. */
async function journalAppends(
  dir: string,
): Promise<{ h: number; offset: number; len: number; end: number }[]> {
  const log = await SegmentedLog.open(join(dir, "journal"), {
    segmentBytes: SEGMENT,
  });
  try {
    const out = [];
    let end = 0;
    for (const r of await log.read(log.firstIndex, log.lastIndex + 1)) {
      end += RECORD_OVERHEAD_BYTES + r.length;
      assert.ok(isAppendRecord(r), "only append records in this journal");
      const a = decodeAppend(r);
      if ("error" in a) throw new Error(a.error);
      out.push({ h: a.handle, offset: a.offset, len: a.data.length, end });
    }
    return out;
  } finally {
    await log.close();
  }
}

Deno.test("appends of a chunk overlapping in flight (the next queued before the last one's sync): offsets back to back, acknowledged in offset order, journal in offset order with no gap; a crash at any point keeps exactly the records written whole, and a record missing before later ones of its chunk is refused as a gap", async () => {
  await fc.assert(
    fc.asyncProperty(
      // Bursts of appends started together; each chunk stays below a
      // fold (64 KiB), so the journal holds only append records.
      fc.array(
        fc.array(
          fc.tuple(
            fc.integer({ min: 1, max: 3 }),
            fc.integer({ min: 1, max: 1500 }),
            fc.boolean(), // a macrotask pause before the next start
          ),
          { minLength: 1, maxLength: 10 },
        ),
        { minLength: 1, maxLength: 4 },
      ),
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.boolean(),
      async (bursts, where, sync) => {
        const dir = await Deno.makeTempDir();
        const opts = {
          chunkBytes: CHUNK,
          sync: sync ? "always" as const : "never" as const,
          journalSegmentBytes: SEGMENT,
          checkpointEvery: 1e9,
        };
        try {
          const store = await ChunkStore.open(dir, opts);
          const model = new Map<number, Uint8Array[]>();
          const acked: { h: number; offset: number }[] = [];
          const reads: Promise<void>[] = [];
          let seed = 0;
          for (const burst of bursts) {
            const writes: Promise<void>[] = [];
            for (const [h, len, pause] of burst) {
              if (!model.has(h)) {
                model.set(h, []);
                await store.setVersion(h, 1, true);
              }
              const parts = model.get(h)!;
              const at = parts.reduce((n, p) => n + p.length, 0);
              const data = fill(len, ++seed);
              parts.push(data);
              writes.push(
                store.write(h, 1, at, data).then((end) => {
                  assert.equal(end, at + len);
                  acked.push({ h, offset: at });
                }),
              );
              // A read between appends sees a prefix of what was started.
              const started = concat(parts);
              reads.push(
                store.read(h, 0, CHUNK, 1).then((got) => {
                  assert.deepEqual(got, started.subarray(0, got.length));
                }),
              );
              if (pause) await new Promise((r) => setTimeout(r, 0));
            }
            await Promise.all(writes);
          }
          await Promise.all(reads);
          // Acknowledged in offset order, chunk by chunk.
          for (const h of model.keys()) {
            const offs = acked.filter((a) => a.h === h).map((a) => a.offset);
            assert.deepEqual(offs, offs.slice().sort((a, b) => a - b));
          }
          await store.close();
          const recs = await journalAppends(dir);
          // The journal holds each chunk's records in offset order, no gap.
          const ends = new Map<number, number>();
          for (const r of recs) {
            assert.equal(r.offset, ends.get(r.h) ?? 0, `chunk ${r.h} gap`);
            ends.set(r.h, r.offset + r.len);
          }
          // A crash: the journal cut at any byte of its records.
          const seg = await segmentFile(dir);
          const pos = recs.at(-1)!.end;
          const cut = Math.floor(where * pos);
          await Deno.truncate(seg, cut);
          const again = await ChunkStore.open(dir, opts);
          try {
            for (const [h, parts] of model) {
              const kept = recs.filter((r) => r.h === h && r.end <= cut);
              const len = kept.reduce((n, r) => n + r.len, 0);
              if (kept.length === 0) {
                assert.equal(again.meta(h), undefined, `chunk ${h} absent`);
                continue;
              }
              assert.equal(again.meta(h)!.length, len);
              assert.deepEqual(
                await again.read(h, 0, CHUNK, 1),
                concat(parts).subarray(0, len),
              );
            }
          } finally {
            await again.close();
          }
          // A record missing with a later one of its chunk kept: a gap.
          const kept = recs.filter((r) => r.end <= cut);
          const gap = kept.findIndex((r, i) =>
            kept.slice(i + 1).some((q) => q.h === r.h)
          );
          if (gap < 0) return;
          const log = await SegmentedLog.open(join(dir, "journal"), {
            segmentBytes: SEGMENT,
          });
          const all = await log.read(log.firstIndex, log.lastIndex + 1);
          await log.truncateSuffix(log.firstIndex);
          await log.append(all.filter((_, i) => i !== gap));
          await log.close();
          await assert.rejects(
            ChunkStore.open(dir, opts),
            (e: unknown) =>
              isStorageError(e) && e.code === "corrupt" &&
              /but it holds/.test(e.message),
          );
        } finally {
          await Deno.remove(dir, { recursive: true });
        }
      },
    ),
    { numRuns: 20 },
  );
});

Deno.test("appends of one chunk started together share a journal sync: the chunk's queue does not wait for the last one's sync", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const store = await ChunkStore.open(dir, {
      chunkBytes: CHUNK,
      journalSegmentBytes: SEGMENT,
    });
    await store.setVersion(1, 1, true);
    await store.write(1, 1, 0, fill(100, 0));
    const before = store.journalSyncs;
    const ends = await Promise.all(
      Array.from(
        { length: 16 },
        (_, i) => store.write(1, 1, 100 + 100 * i, fill(100, i + 1)),
      ),
    );
    assert.deepEqual(ends, Array.from({ length: 16 }, (_, i) => 200 + 100 * i));
    // One sync for all 16 (more if a flush started before the rest were
    // queued: 3 was seen once with 3 test files running at once);
    // serialized per chunk it would be 16.
    assert.ok(
      store.journalSyncs - before <= 4,
      `${store.journalSyncs - before} syncs`,
    );
    // On the event loop's thread (the first sync at least: later ones go
    // to the thread pool only once syncs average over 10 ms).
    assert.ok(store.journalInlineSyncs >= 1, `${store.journalInlineSyncs}`);
    await store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a checkpoint taken while a chunk's append, version bump and delete are queued reopens: the delete after its index explains the chunk it no longer holds", async () => {
  // Found by the model above (seed 292499710): the checkpoint waits for the
  // queued ops, so it no longer holds the chunk, while the append records
  // after its index still name it.
  const dir = await Deno.makeTempDir();
  const opts = {
    chunkBytes: CHUNK,
    sync: "never" as const,
    journalSegmentBytes: SEGMENT,
    checkpointEvery: 3,
    foldBytes: BLOCK_BYTES,
  };
  try {
    const store = await ChunkStore.open(dir, opts);
    const ops = [
      store.setVersion(1, 1, true),
      store.write(1, 1, 0, new Uint8Array([1])),
      store.setVersion(1, 2, false),
      store.write(1, 2, 1, new Uint8Array([2])),
      store.delete(1),
    ];
    await Promise.all(ops);
    await store.close();
    const again = await ChunkStore.open(dir, opts);
    assert.deepEqual(again.list(), []);
    await again.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
