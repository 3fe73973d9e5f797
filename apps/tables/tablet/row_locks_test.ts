import assert from "node:assert/strict";
import { rowHash, RowLocks } from "./row_locks.ts";

const enc = new TextEncoder();

/** A run that stays inside its lock until `release` is called. */
function held(log: string[], name: string) {
  let release!: () => void;
  const done = new Promise<void>((r) => release = r);
  return {
    release,
    fn: async () => {
      log.push(`start ${name}`);
      await done;
      log.push(`end ${name}`);
      return name;
    },
  };
}

/** Two different rows whose hashes are equal (found by a birthday search). */
function collidingRows(): [Uint8Array, Uint8Array] {
  const seen = new Map<number, string>();
  for (let i = 0;; i++) {
    const row = `row-${i}`;
    const h = rowHash(enc.encode(row));
    const other = seen.get(h);
    if (other !== undefined) return [enc.encode(other), enc.encode(row)];
    seen.set(h, row);
  }
}

Deno.test("runs on one row take turns in arrival order; other rows do not wait; the lock is gone when they settle", async () => {
  const locks = new RowLocks();
  const log: string[] = [];
  const a1 = held(log, "a1");
  const a2 = held(log, "a2");
  const b = held(log, "b");
  const p1 = locks.with(enc.encode("a"), a1.fn);
  const p2 = locks.with(enc.encode("a"), a2.fn);
  const pb = locks.with(enc.encode("b"), b.fn);
  await Promise.resolve();
  assert.deepEqual(log, ["start a1", "start b"]);
  b.release();
  assert.equal(await pb, "b");
  a1.release();
  assert.equal(await p1, "a1");
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(log.slice(3), ["end a1", "start a2"]);
  a2.release();
  assert.equal(await p2, "a2");
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(locks.size, 0);
});

Deno.test("two rows whose hashes collide share one lock: the second waits for the first, and both complete", async () => {
  const [r1, r2] = collidingRows();
  assert.notDeepEqual(r1, r2);
  const locks = new RowLocks();
  const log: string[] = [];
  const x = held(log, "x");
  const y = held(log, "y");
  const px = locks.with(r1, x.fn);
  const py = locks.with(r2, y.fn);
  await Promise.resolve();
  assert.deepEqual(log, ["start x"]);
  y.release();
  x.release();
  assert.deepEqual(await Promise.all([px, py]), ["x", "y"]);
  assert.deepEqual(log, ["start x", "end x", "start y", "end y"]);
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(locks.size, 0);
});

Deno.test("a run that throws releases the lock and rejects", async () => {
  const locks = new RowLocks();
  const row = enc.encode("r");
  await assert.rejects(
    locks.with(row, () => {
      throw new Error("boom");
    }),
    /boom/,
  );
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(await locks.with(row, () => Promise.resolve(7)), 7);
});
