import assert from "node:assert/strict";
import type { WatchEvent } from "./kv_state_machine.ts";
import { WatchError, WatchHub } from "./watch_hub.ts";

const put = (key: string, revision: number): WatchEvent => ({
  type: "put",
  key,
  revision,
});

async function take(
  it: AsyncGenerator<WatchEvent>,
  n: number,
): Promise<WatchEvent[]> {
  const out: WatchEvent[] = [];
  while (out.length < n) {
    const r = await it.next();
    if (r.done) break;
    out.push(r.value);
  }
  return out;
}

Deno.test("a watch replays history from a revision, then follows live changes under its prefix", async () => {
  const hub = new WatchHub();
  hub.publish([put("a/1", 1), put("b/1", 2), put("a/2", 3)]);
  const ac = new AbortController();
  const it = hub.watch("a/", 2, ac.signal);
  const first = await take(it, 1);
  assert.deepEqual(first.map((e) => e.revision), [3]);
  hub.publish([put("b/2", 4), put("a/3", 5)]);
  assert.deepEqual((await take(it, 1)).map((e) => e.key), ["a/3"]);
  ac.abort();
  assert.equal((await it.next()).done, true);
  assert.equal(hub.watchers, 0);
});

Deno.test("a start revision older than the history kept is refused as compacted", async () => {
  const hub = new WatchHub(2);
  hub.publish([put("k", 1), put("k", 2), put("k", 3)]);
  assert.equal(hub.oldestRevision, 2);
  const it = hub.watch("", 1, new AbortController().signal);
  await assert.rejects(
    () => it.next(),
    (e) =>
      e instanceof WatchError && e.code === "compacted" &&
      e.oldestRevision === 2,
  );
});

Deno.test("a watcher too far behind is ended with lagging, not buffered forever", async () => {
  const hub = new WatchHub(100, 3);
  const it = hub.watch("", undefined, new AbortController().signal);
  const pending = it.next(); // registers the subscriber
  hub.publish([put("k", 1)]);
  assert.equal((await pending).value?.revision, 1);
  hub.publish([
    put("k", 2),
    put("k", 3),
    put("k", 4),
    put("k", 5),
    put("k", 6),
  ]);
  const got: number[] = [];
  await assert.rejects(async () => {
    for (;;) {
      const r = await it.next();
      if (r.done) break;
      got.push(r.value.revision);
    }
  }, (e) => e instanceof WatchError && e.code === "lagging");
  assert.deepEqual(got, [2, 3, 4]);
});

Deno.test("after a snapshot restore, history starts at the snapshot's revision", async () => {
  const hub = new WatchHub();
  hub.restart(50);
  assert.equal(hub.oldestRevision, 51);
  await assert.rejects(
    () => hub.watch("", 10, new AbortController().signal).next(),
    WatchError,
  );
  const ac = new AbortController();
  const it = hub.watch("", 51, ac.signal);
  const p = it.next();
  hub.publish([put("x", 51)]);
  assert.equal((await p).value?.key, "x");
  ac.abort();
});

Deno.test("a member that applied its whole log keeps every change: a watch may start at revision 1", async () => {
  const hub = new WatchHub();
  hub.advanceTo(3); // raft's own entries, no changes
  hub.publish([put("k", 4)]);
  assert.equal(hub.oldestRevision, 1);
  const ac = new AbortController();
  const it = hub.watch("", 1, ac.signal);
  assert.equal((await it.next()).value?.revision, 4);
  ac.abort();
});
