import assert from "node:assert/strict";
import { GroupCommit } from "./group_commit.ts";

Deno.test("items submitted during a flush are batched into the next flush", async () => {
  const batches: number[][] = [];
  let release: () => void = () => {};
  const gc = new GroupCommit<number, number>(async (items) => {
    batches.push(items);
    if (batches.length === 1) await new Promise<void>((r) => release = r);
    return items.map((i) => i * 10);
  });
  const first = gc.submit(1);
  await new Promise((r) => setTimeout(r, 0)); // first flush is now in flight
  const rest = [2, 3, 4].map((i) => gc.submit(i));
  let restDone = false;
  void Promise.all(rest).then(() => restDone = true);
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(restDone, false, "nothing resolves before its flush");
  release();
  assert.equal(await first, 10);
  assert.deepEqual(await Promise.all(rest), [20, 30, 40]);
  assert.deepEqual(batches, [[1], [2, 3, 4]]);
});

Deno.test("a failed flush rejects exactly the items of its batch", async () => {
  let calls = 0;
  const gc = new GroupCommit<number, number>((items) => {
    calls++;
    if (calls === 1) return Promise.reject(new Error("disk"));
    return Promise.resolve(items);
  });
  const a = gc.submit(1);
  const b = gc.submit(2);
  await assert.rejects(a, /disk/);
  await assert.rejects(b, /disk/);
  assert.equal(await gc.submit(3), 3);
});

Deno.test("exclusive tasks run in order between flushes", async () => {
  const events: string[] = [];
  const gc = new GroupCommit<string, string>((items) => {
    events.push(`flush ${items.join(",")}`);
    return Promise.resolve(items);
  });
  const all = [
    gc.submit("a"),
    gc.submit("b"),
    gc.exclusive(() => {
      events.push("task");
      return Promise.resolve("t");
    }),
    gc.submit("c"),
  ];
  assert.deepEqual(await Promise.all(all), ["a", "b", "t", "c"]);
  assert.deepEqual(events, ["flush a,b", "task", "flush c"]);
  await gc.idle();
  assert.equal(gc.pending, 0);
});

Deno.test("with gatherTurns, submitters chained a few microtasks apart share one flush (without, the first goes alone)", async () => {
  for (const gatherTurns of [0, 8]) {
    const batches: number[][] = [];
    const gc = new GroupCommit<number, number>(
      (items) => {
        batches.push(items);
        return Promise.resolve(items);
      },
      undefined,
      gatherTurns,
    );
    // Each submits three microtask turns after the one before, as appends
    // of one chunk through its serial queue do.
    let chain = Promise.resolve();
    const all: Promise<number>[] = [];
    for (let i = 0; i < 6; i++) {
      chain = chain.then(() => {
        all.push(gc.submit(i));
      }).then(() => {}).then(() => {});
    }
    await chain;
    assert.deepEqual((await Promise.all(all)).sort(), [0, 1, 2, 3, 4, 5]);
    if (gatherTurns === 0) assert.deepEqual(batches[0], [0]);
    else assert.deepEqual(batches, [[0, 1, 2, 3, 4, 5]]);
  }
});
