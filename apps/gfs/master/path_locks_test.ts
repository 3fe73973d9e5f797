import assert from "node:assert/strict";
import fc from "fast-check";
import { PathLocks } from "./path_locks.ts";

Deno.test("two creations in one directory hold their locks at the same time", async () => {
  const locks = new PathLocks();
  const a = await locks.acquire(PathLocks.forPath("/d/a", "write"));
  const b = await Promise.race([
    locks.acquire(PathLocks.forPath("/d/b", "write")),
    new Promise<null>((r) => setTimeout(() => r(null), 50)),
  ]);
  assert.notEqual(b, null);
  a();
  b!();
  assert.equal(locks.size, 0);
});

Deno.test("a write lock on a directory waits for operations beneath it", async () => {
  const locks = new PathLocks();
  const leaf = await locks.acquire(PathLocks.forPath("/d/a", "write"));
  let dirHeld = false;
  const dir = locks.acquire(PathLocks.forPath("/d", "write")).then((r) => {
    dirHeld = true;
    return r;
  });
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(dirHeld, false);
  leaf();
  (await dir)();
  assert.equal(dirHeld, true);
});

Deno.test("random lock sets never break exclusion and always finish (no deadlock)", async () => {
  const paths = ["/a", "/a/b", "/a/b/c", "/a/d", "/e", "/e/f"];
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.tuple(
          fc.constantFrom(...paths),
          fc.constantFrom("read" as const, "write" as const),
          fc.nat(3),
        ),
        { minLength: 1, maxLength: 25 },
      ),
      async (ops) => {
        const locks = new PathLocks();
        const holders = new Map<string, { r: number; w: number }>();
        const check = (p: string, mode: "read" | "write") => {
          const h = holders.get(p) ?? { r: 0, w: 0 };
          if (mode === "write") assert.ok(h.r === 0 && h.w === 0);
          else assert.equal(h.w, 0);
          if (mode === "write") h.w++;
          else h.r++;
          holders.set(p, h);
        };
        await Promise.all(ops.map(async ([path, mode, delay]) => {
          const reqs = PathLocks.forPath(path, mode);
          const release = await locks.acquire(reqs);
          for (const r of reqs) check(r.path, r.mode);
          await new Promise((r) => setTimeout(r, delay));
          for (const r of reqs) {
            const h = holders.get(r.path)!;
            if (r.mode === "write") h.w--;
            else h.r--;
          }
          release();
        }));
        assert.equal(locks.size, 0);
      },
    ),
    { numRuns: 40 },
  );
});
