import assert from "node:assert/strict";
import { TestCluster, text } from "./_test_cluster.ts";
import { CommitStreamHub, CommitStreamSubscriber } from "./commit_stream.ts";
import type { Entry } from "./messages.ts";
import { isRaftError } from "./raft_error.ts";

function values(entries: Entry[]): string[] {
  const d = new TextDecoder();
  return entries.filter((e) => e.type === "normal" && e.data.length > 0).map((
    e,
  ) => d.decode(e.data));
}

Deno.test("client learners get the committed stream from a follower, not the leader", () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  const hub = new CommitStreamHub(c.storages.get(3)!, { maxBatchBytes: 2 });
  const got: Entry[] = [];
  const sub = new CommitStreamSubscriber((e) => got.push(e), () => {});
  const pending = hub.subscribe("client-a", 1);
  for (const v of ["a", "b", "c", "d"]) c.node(1).propose(text(v));
  c.settle();
  c.tick(2);
  pending.push(...hub.committed(c.node(3).raft.log.committed));
  // Deliver, acknowledge, repeat until quiet.
  for (let i = 0; i < 100 && pending.length > 0; i++) {
    const m = pending.shift()!;
    pending.push(...hub.ack("client-a", sub.receive(m)));
  }
  assert.deepEqual(values(got), ["a", "b", "c", "d"]);
  assert.equal(sub.applied, c.node(3).raft.log.committed);
});

Deno.test("a client learner resumes at another member after losing its member", () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  for (const v of ["a", "b"]) c.node(1).propose(text(v));
  c.settle();
  c.tick(2);
  const got: Entry[] = [];
  const sub = new CommitStreamSubscriber((e) => got.push(e), () => {});
  const hub2 = new CommitStreamHub(c.storages.get(2)!);
  for (const m of hub2.subscribe("x", 1)) sub.receive(m);
  for (const m of hub2.committed(c.node(2).raft.log.committed)) sub.receive(m);
  // Member 2 goes away; resume at member 3 from where we are.
  c.node(1).propose(text("c"));
  c.settle();
  c.tick(2);
  const hub3 = new CommitStreamHub(c.storages.get(3)!);
  hub3.committed(c.node(3).raft.log.committed);
  for (const m of hub3.subscribe("x", sub.applied + 1)) sub.receive(m);
  assert.deepEqual(values(got), ["a", "b", "c"]);
});

Deno.test("a client learner behind compaction gets a snapshot, and a gap is an error", () => {
  const c = new TestCluster([1]);
  c.elect(1);
  for (const v of ["a", "b", "c"]) c.node(1).propose(text(v));
  c.settle();
  const s = c.storages.get(1)!;
  const applied = c.node(1).raft.log.applied;
  s.createSnapshot(applied - 1, c.node(1).confState(), text("state"));
  s.compact(applied - 1);
  const hub = new CommitStreamHub(s);
  hub.committed(c.node(1).raft.log.committed);
  let restored = "";
  const got: Entry[] = [];
  const sub = new CommitStreamSubscriber(
    (e) => got.push(e),
    (snap) => restored = new TextDecoder().decode(snap.data),
  );
  for (const m of hub.subscribe("late", 1)) sub.receive(m);
  assert.equal(restored, "state");
  assert.deepEqual(values(got), ["c"]);
  assert.throws(
    () =>
      sub.receive({
        kind: "entries",
        subscriber: "late",
        entries: [{
          term: 9,
          index: sub.applied + 2,
          type: "normal",
          data: text("z"),
        }],
      }),
    (e) => isRaftError(e, "invariant"),
  );
});

Deno.test("the hub stops sending past the unacknowledged-bytes window", () => {
  const c = new TestCluster([1]);
  c.elect(1);
  for (let i = 0; i < 10; i++) c.node(1).propose(new Uint8Array(100));
  c.settle();
  const hub = new CommitStreamHub(c.storages.get(1)!, {
    maxBatchBytes: 100,
    maxInflightBytes: 300,
  });
  hub.committed(c.node(1).raft.log.committed);
  const first = hub.subscribe("slow", 1);
  const sent = first.flatMap((m) => m.kind === "entries" ? m.entries : []);
  assert.ok(
    sent.reduce((n, e) => n + e.data.length, 0) <= 400,
    "window ignored",
  );
  const last = sent[sent.length - 1]!.index;
  const more = hub.ack("slow", last);
  assert.ok(more.length > 0);
});
