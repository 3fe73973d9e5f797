import assert from "node:assert/strict";
import { join } from "node:path";
import fc from "fast-check";
import { BLOCK_BYTES, ChunkStore } from "./chunk_store.ts";
import { isGfsError } from "../shared/gfs_error.ts";

const CHUNK = 4 * BLOCK_BYTES;

Deno.test("chunk writes at any offsets read back like a byte array model", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.tuple(
          fc.nat(CHUNK - 1),
          fc.integer({ min: 1, max: 70_000 }),
          fc.nat(255),
        ),
        { minLength: 1, maxLength: 6 },
      ),
      async (writes) => {
        const dir = await Deno.makeTempDir();
        const store = await ChunkStore.open(dir, {
          chunkBytes: CHUNK,
          sync: "never",
        });
        try {
          await store.setVersion(1, 1, true);
          let model = new Uint8Array(0);
          for (const [off, len0, fill] of writes) {
            const len = Math.min(len0, CHUNK - off);
            const data = new Uint8Array(len).fill(fill);
            await store.write(1, 1, off, data);
            const next = new Uint8Array(Math.max(model.length, off + len));
            next.set(model);
            next.set(data, off);
            model = next;
          }
          assert.deepEqual(await store.read(1, 0, CHUNK), model);
          const mid = Math.floor(model.length / 3);
          assert.deepEqual(
            await store.read(1, mid, 1000),
            model.subarray(mid, mid + 1000),
          );
          // The same bytes as a list of blocks (what a chunkserver sends).
          const joined = (parts: Uint8Array[]) =>
            new Uint8Array(parts.flatMap((p) => [...p]));
          assert.deepEqual(joined(await store.readParts(1, 0, CHUNK)), model);
          assert.deepEqual(
            joined(await store.readParts(1, mid, 70_000)),
            model.subarray(mid, mid + 70_000),
          );
        } finally {
          await store.close();
          await Deno.remove(dir, { recursive: true });
        }
      },
    ),
    { numRuns: 15 },
  );
});

Deno.test("chunks, versions and lengths survive a reopen", async () => {
  const dir = await Deno.makeTempDir();
  try {
    let store = await ChunkStore.open(dir, { chunkBytes: CHUNK });
    await store.setVersion(7, 3, true);
    const data = new Uint8Array(100_000).map((_, i) => (i * 7919) % 251);
    await store.write(7, 3, 0, data);
    await store.close();
    store = await ChunkStore.open(dir, { chunkBytes: CHUNK });
    assert.deepEqual(store.list(), [[7, 3, 100_000]]);
    assert.deepEqual(await store.read(7, 0, CHUNK, 3), data);
    await assert.rejects(
      store.read(7, 0, 10, 2),
      (e) => isGfsError(e, "stale"),
    );
    await store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a flipped byte on disk makes the read fail as corrupt, never return bad data", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // Folded into blocks at once (the write is journaled first).
    const store = await ChunkStore.open(dir, {
      chunkBytes: CHUNK,
      foldBytes: BLOCK_BYTES,
    });
    await store.setVersion(1, 1, true);
    const data = new Uint8Array(3 * BLOCK_BYTES).fill(0x41);
    await store.write(1, 1, 0, data);
    await store.close();
    const vol = join(dir, "volume", "volume.dat");
    const bytes = await Deno.readFile(vol);
    const at = bytes.indexOf(0x41) + BLOCK_BYTES + 100;
    bytes[at]! ^= 0xff;
    await Deno.writeFile(vol, bytes);
    const again = await ChunkStore.open(dir, { chunkBytes: CHUNK });
    await assert.rejects(
      again.read(1, 0, CHUNK),
      (e) => isGfsError(e, "corrupt"),
    );
    await assert.rejects(
      again.readParts(1, BLOCK_BYTES, 10),
      (e) => isGfsError(e, "corrupt"),
    );
    await assert.rejects(again.verify(1), (e) => isGfsError(e, "corrupt"));
    await again.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a write past the chunk size is refused as too_large", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const store = await ChunkStore.open(dir, { chunkBytes: CHUNK });
    await store.setVersion(1, 1, true);
    await assert.rejects(
      store.write(1, 1, CHUNK - 10, new Uint8Array(11)),
      (e) => isGfsError(e, "too_large"),
    );
    await store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("metadata survives reopen through journal checkpoints, deletes included", async () => {
  const dir = await Deno.makeTempDir();
  try {
    let store = await ChunkStore.open(dir, {
      chunkBytes: CHUNK,
      checkpointEvery: 5,
    });
    const expected = new Map<number, Uint8Array>();
    for (let h = 1; h <= 12; h++) {
      await store.setVersion(h, 1, true);
      const data = new Uint8Array(1000 + h).fill(h);
      await store.write(h, 1, 0, data);
      expected.set(h, data);
      if (h % 4 === 0) {
        await store.delete(h - 1);
        expected.delete(h - 1);
      }
    }
    await store.checkpoint();
    await store.write(12, 1, 1012, new Uint8Array([7, 7]));
    expected.set(12, new Uint8Array([...expected.get(12)!, 7, 7]));
    await store.close();
    store = await ChunkStore.open(dir, { chunkBytes: CHUNK });
    assert.deepEqual(store.list().map(([h]) => h).sort((a, b) => a - b), [
      ...expected.keys(),
    ]);
    for (const [h, data] of expected) {
      assert.deepEqual(await store.read(h, 0, CHUNK), data);
    }
    await store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readInto waits for a write queued on the chunk, and runs at once otherwise", async () => {
  const dir = await Deno.makeTempDir();
  const store = await ChunkStore.open(dir, {
    chunkBytes: CHUNK,
    sync: "never",
  });
  try {
    await store.setVersion(1, 1, true);
    await store.write(1, 1, 0, new Uint8Array(BLOCK_BYTES + 100).fill(1));
    const out = new Uint8Array(BLOCK_BYTES + 100);
    // Nothing queued: the read is done by the time readInto returns.
    const idle = store.readInto(1, BLOCK_BYTES - 50, 100, 1, out);
    assert.deepEqual(out.subarray(0, 100), new Uint8Array(100).fill(1));
    assert.equal(await idle, 100);
    // A write queued, not awaited: the read sees its bytes, never the old.
    const written = store.write(1, 1, 0, new Uint8Array(BLOCK_BYTES).fill(2));
    const n = await store.readInto(1, BLOCK_BYTES - 50, 100, 1, out);
    await written;
    assert.equal(n, 100);
    assert.deepEqual(
      out.subarray(0, 100),
      new Uint8Array([
        ...new Uint8Array(50).fill(2),
        ...new Uint8Array(50).fill(1),
      ]),
    );
    // A refusal is a rejected promise, not a throw.
    await assert.rejects(
      () => store.readInto(1, 0, 10, 9, out),
      (e) => isGfsError(e, "stale"),
    );
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
