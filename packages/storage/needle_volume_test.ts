import assert from "node:assert/strict";
import { join } from "node:path";
import fc from "fast-check";
import { crc32c } from "@strata/codec";
import { INDEX_FILE, NeedleVolume, VOLUME_FILE } from "./needle_volume.ts";
import { needleBytes } from "./needle.ts";
import { isStorageError } from "./storage_error.ts";

const LONG = Deno.env.get("STRATA_LONG") === "1";

function blob(key: number, size = 20 + (key % 37)): Uint8Array {
  return Uint8Array.from({ length: size }, (_, i) => (key * 13 + i) & 0xff);
}

function cookieOf(key: number): number {
  return key * 7919 + 17;
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "strata-vol-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

for (const checksum of ["crc32c", "crc32"] as const) {
  Deno.test(`put, get, overwrite and delete, then the same after a reopen (${checksum})`, async () => {
    await withDir(async (dir) => {
      const v = await NeedleVolume.open(dir, { checksum });
      try {
        for (let k = 1; k <= 50; k++) await v.put(k, 0, cookieOf(k), blob(k));
        await v.put(7, 1, cookieOf(7), blob(700)); // alternate key
        await v.put(8, 0, cookieOf(8), blob(800)); // overwrite
        assert.equal(await v.delete(9), true);
        assert.equal(await v.delete(9), false);
        assert.deepEqual(await v.get(7, 0, cookieOf(7)), blob(7));
        assert.deepEqual(await v.get(7, 1, cookieOf(7)), blob(700));
        assert.deepEqual(await v.get(8, 0, cookieOf(8)), blob(800));
        await assert.rejects(
          v.get(9, 0, cookieOf(9)),
          (e) => isStorageError(e, "not_found"),
        );
        await assert.rejects(
          v.get(10, 0, 12345),
          (e) => isStorageError(e, "not_found") && /cookie/.test(e.message),
        );
        await assert.rejects(
          v.get(999, 0, 1),
          (e) => isStorageError(e, "not_found"),
        );
        await assert.rejects(
          v.put(-1, 0, 1, blob(1)),
          (e) => isStorageError(e, "bad_argument"),
        );
        assert.equal(v.count, 50);
      } finally {
        await v.close();
      }
      for (const withIndex of [true, false]) {
        if (!withIndex) await Deno.remove(join(dir, INDEX_FILE));
        const again = await NeedleVolume.open(dir);
        try {
          assert.equal(again.recovery.checkpoint, withIndex ? "used" : "none");
          assert.equal(again.count, 50);
          assert.deepEqual(await again.get(8, 0, cookieOf(8)), blob(800));
          assert.deepEqual(await again.get(50, 0, cookieOf(50)), blob(50));
          await assert.rejects(
            again.get(9, 0, cookieOf(9)),
            (e) => isStorageError(e, "not_found"),
          );
        } finally {
          await again.close();
        }
      }
    });
  });
}

Deno.test("needles past the last index checkpoint are scanned and indexed on open", async () => {
  await withDir(async (dir) => {
    const v = await NeedleVolume.open(dir, { checkpointEvery: 10 });
    for (let k = 1; k <= 25; k++) await v.put(k, 0, cookieOf(k), blob(k));
    // Background checkpoints ran every 10 writes; this one covers all 25.
    await v.checkpoint();
    for (let k = 26; k <= 30; k++) await v.put(k, 0, cookieOf(k), blob(k));
    await v.delete(3); // before the checkpoint's end: flag only in the volume
    // Simulate a crash: keep the files as they are now, without close().
    const snapshot = await Deno.readFile(join(dir, VOLUME_FILE));
    const idx = await Deno.readFile(join(dir, INDEX_FILE));
    await v.close();
    const copy = join(dir, "copy");
    await Deno.mkdir(copy);
    await Deno.writeFile(join(copy, VOLUME_FILE), snapshot);
    await Deno.writeFile(join(copy, INDEX_FILE), idx);
    const again = await NeedleVolume.open(copy);
    try {
      assert.equal(again.recovery.checkpoint, "used");
      assert.equal(again.recovery.scannedNeedles, 5);
      assert.deepEqual(await again.get(28, 0, cookieOf(28)), blob(28));
      // The checkpoint still lists 3; the flag in the volume wins.
      await assert.rejects(
        again.get(3, 0, cookieOf(3)),
        (e) => isStorageError(e, "not_found"),
      );
      assert.equal(again.has(3), false);
    } finally {
      await again.close();
    }
  });
});

Deno.test("truncating the volume at every byte offset of its last needles reopens to exactly the needles before the cut", async () => {
  await withDir(async (dir) => {
    const src = join(dir, "src");
    const v = await NeedleVolume.open(src);
    const ends: number[] = [];
    for (let k = 1; k <= 6; k++) {
      const loc = await v.put(k, 0, cookieOf(k), blob(k));
      ends.push(loc.offset + needleBytes(loc.size));
    }
    await v.close();
    const full = await Deno.readFile(join(src, VOLUME_FILE));
    assert.equal(full.length, ends[5]);
    const work = join(dir, "work");
    await Deno.mkdir(work);
    for (let cut = ends[2]!; cut <= full.length; cut++) {
      await Deno.writeFile(join(work, VOLUME_FILE), full.subarray(0, cut));
      const expected = ends.filter((e) => e <= cut).length;
      const w = await NeedleVolume.open(work);
      try {
        assert.equal(w.count, expected, `cut at ${cut}`);
        assert.equal(w.recovery.droppedBytes, cut - ends[expected - 1]!);
        for (let k = 1; k <= 6; k++) {
          if (k <= expected) {
            assert.deepEqual(await w.get(k, 0, cookieOf(k)), blob(k));
          } else assert.equal(w.has(k), false);
        }
        // The tail was cut on disk: a new put lands right after the last good needle.
        const loc = await w.put(100, 0, 1, blob(100));
        assert.equal(loc.offset, ends[expected - 1]);
      } finally {
        await w.close();
        await Deno.remove(join(work, INDEX_FILE)).catch(() => {});
      }
    }
  });
});

for (const checksum of ["crc32c", "crc32"] as const) {
  Deno.test(`flipped bits in a ${checksum} volume are detected and never returned as data`, async () => {
    await withDir(async (dir) => {
      const src = join(dir, "src");
      const v = await NeedleVolume.open(src, { checksum });
      for (let k = 1; k <= 12; k++) await v.put(k, 0, cookieOf(k), blob(k));
      await v.close();
      const clean = await Deno.readFile(join(src, VOLUME_FILE));
      const idx = await Deno.readFile(join(src, INDEX_FILE));
      const work = join(dir, "work");
      await Deno.mkdir(work);
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 16 * 8, max: clean.length * 8 - 1 }),
          fc.boolean(),
          async (bit, useIndex) => {
            const bytes = clean.slice();
            bytes[bit >> 3]! ^= 1 << (bit & 7);
            await Deno.writeFile(join(work, VOLUME_FILE), bytes);
            await Deno.remove(join(work, INDEX_FILE)).catch(() => {});
            if (useIndex) await Deno.writeFile(join(work, INDEX_FILE), idx);
            const w = await NeedleVolume.open(work);
            try {
              for (let k = 1; k <= 12; k++) {
                try {
                  assert.deepEqual(await w.get(k, 0, cookieOf(k)), blob(k));
                } catch (e) {
                  assert.ok(
                    isStorageError(e, "corrupt") ||
                      isStorageError(e, "not_found"),
                    String(e),
                  );
                }
              }
            } finally {
              await w.close();
            }
          },
        ),
        { numRuns: LONG ? 300 : 30 },
      );
    });
  });
}

Deno.test("getSync with the expected CRC32C of the data verifies it and the needle in one pass", async () => {
  await withDir(async (dir) => {
    const src = join(dir, "src");
    const sizes = [0, 1, 7, 8, 100, 4096, 65536];
    const v = await NeedleVolume.open(src);
    for (const [i, n] of sizes.entries()) {
      await v.put(i + 1, 3, cookieOf(i + 1), blob(i + 1, n));
    }
    const scratch = new Uint8Array(needleBytes(65536));
    for (const [i, n] of sizes.entries()) {
      const want = blob(i + 1, n);
      const crc = crc32c(want);
      assert.deepEqual(
        v.getSync(i + 1, 3, cookieOf(i + 1), { crc32c: crc }),
        want,
      );
      assert.deepEqual(
        v.getSync(i + 1, 3, cookieOf(i + 1), { crc32c: crc, into: scratch }),
        want,
      );
      assert.throws(
        () => v.getSync(i + 1, 3, cookieOf(i + 1), { crc32c: crc ^ 1 }),
        (e) => isStorageError(e, "corrupt"),
      );
    }
    await v.close();
    // A flipped bit anywhere in the file: with the right data CRC in hand,
    // a get still returns the right bytes or fails, never wrong bytes; the
    // header fields the needle checksum covers are checked through it.
    const clean = await Deno.readFile(join(src, VOLUME_FILE));
    const work = join(dir, "work");
    await Deno.mkdir(work);
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 16 * 8, max: clean.length * 8 - 1 }),
        async (bit) => {
          const bytes = clean.slice();
          bytes[bit >> 3]! ^= 1 << (bit & 7);
          await Deno.writeFile(join(work, VOLUME_FILE), bytes);
          await Deno.remove(join(work, INDEX_FILE)).catch(() => {});
          const w = await NeedleVolume.open(work);
          try {
            for (const [i, n] of sizes.entries()) {
              const want = blob(i + 1, n);
              try {
                assert.deepEqual(
                  w.getSync(i + 1, 3, cookieOf(i + 1), {
                    crc32c: crc32c(want),
                  }),
                  want,
                );
              } catch (e) {
                assert.ok(
                  isStorageError(e, "corrupt") ||
                    isStorageError(e, "not_found"),
                  String(e),
                );
              }
            }
          } finally {
            await w.close();
          }
        },
      ),
      { numRuns: LONG ? 300 : 40 },
    );
  });
});

Deno.test("compaction reclaims space while puts, deletes and gets keep working", async () => {
  await withDir(async (dir) => {
    const v = await NeedleVolume.open(dir);
    const model = new Map<number, Uint8Array>();
    try {
      const n = LONG ? 3000 : 600;
      await Promise.all(
        Array.from({ length: n }, (_, i) => {
          model.set(i, blob(i, 500));
          return v.put(i, 0, cookieOf(i), blob(i, 500));
        }),
      );
      for (let i = 0; i < n; i += 2) {
        await v.delete(i);
        model.delete(i);
      }
      const before = v.sizeBytes;
      const compaction = v.compact();
      // Concurrent traffic while the copy runs.
      const traffic = (async () => {
        for (let r = 0; r < 60; r++) {
          const k = n + r;
          await v.put(k, 0, cookieOf(k), blob(k));
          model.set(k, blob(k));
          const over = 1 + 2 * r; // overwrite a live odd key
          await v.put(over, 0, cookieOf(over), blob(over + 5000));
          model.set(over, blob(over + 5000));
          const del = 3 + 2 * r + 200; // delete another live odd key
          await v.delete(del);
          model.delete(del);
          const probe = 5 + 2 * r + 400;
          if (model.has(probe)) {
            assert.deepEqual(
              await v.get(probe, 0, cookieOf(probe)),
              model.get(probe),
            );
          }
        }
      })();
      const [report] = await Promise.all([compaction, traffic]);
      assert.ok(report.afterBytes < before, "space was reclaimed");
      assert.ok(v.sizeBytes < before);
      const check = async (vol: NeedleVolume) => {
        assert.equal(vol.count, model.size);
        for (let k = 0; k < n + 60; k++) {
          const want = model.get(k);
          if (want === undefined) {
            await assert.rejects(
              vol.get(k, 0, cookieOf(k)),
              (e) => isStorageError(e, "not_found"),
            );
          } else {
            assert.deepEqual(
              await vol.get(k, 0, cookieOf(k)),
              want,
              `key ${k}`,
            );
          }
        }
      };
      await check(v);
      await v.close();
      const again = await NeedleVolume.open(dir);
      await check(again);
      await again.close();
      // Without the checkpoint a full scan must agree too (no resurrections).
      await Deno.remove(join(dir, INDEX_FILE));
      const scanned = await NeedleVolume.open(dir);
      try {
        await check(scanned);
      } finally {
        await scanned.close();
      }
    } finally {
      await v.close();
    }
  });
});

Deno.test("a full volume turns read-only: puts fail, gets and deletes still work", async () => {
  await withDir(async (dir) => {
    const v = await NeedleVolume.open(dir, { maxBytes: 4096 });
    try {
      let stored = 0;
      for (let k = 0; k < 100; k++) {
        try {
          await v.put(k, 0, cookieOf(k), blob(k, 200));
          stored++;
        } catch (e) {
          assert.ok(isStorageError(e, "read_only"));
          break;
        }
      }
      assert.ok(stored > 5 && stored < 100);
      assert.ok(v.readOnly);
      assert.ok(v.sizeBytes <= 4096);
      await assert.rejects(
        v.put(1000, 0, 1, new Uint8Array(1)),
        (e) => isStorageError(e, "read_only"),
      );
      assert.deepEqual(await v.get(0, 0, cookieOf(0)), blob(0, 200));
      assert.equal(await v.delete(0), true);
    } finally {
      await v.close();
    }
  });
});

Deno.test("a second opener of a volume directory gets the lock error", async () => {
  await withDir(async (dir) => {
    const v = await NeedleVolume.open(dir);
    try {
      await assert.rejects(
        NeedleVolume.open(dir),
        (e) => isStorageError(e, "locked"),
      );
    } finally {
      await v.close();
    }
  });
});
