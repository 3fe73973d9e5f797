/**
 * The learner protocol's pure parts: what a member sends next
 * (learner_feed.ts), what a replica accepts (learner_replica.ts), the
 * messages' codec, and resumption across members, disconnects and
 * compaction, checked against the members' own state (fast-check).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import type { KvCommand } from "./kv_commands.ts";
import { KvStateMachine } from "./kv_state_machine.ts";
import { type FeedSource, nextFeedStep } from "./learner_feed.ts";
import { Changes, SnapshotChunk } from "./learner_messages.ts";
import { LearnerReplica, LearnerStreamError } from "./learner_replica.ts";
import { WatchHub } from "./watch_hub.ts";

const RUNS = Deno.env.get("STRATA_LONG") ? 1000 : 100;
const bytes = (s: string) => new TextEncoder().encode(s);

/** A member: a state machine and watch hub applying a shared log, as KvReplica does. */
class Member {
  readonly store = new KvStateMachine();
  readonly watches: WatchHub;
  constructor(capacity: number) {
    this.watches = new WatchHub(capacity);
  }
  apply(index: number, c: KvCommand): void {
    const out = this.store.apply(index, c);
    if (out) this.watches.publish(out.events);
    this.watches.advanceTo(index);
  }
  /** Installs another member's snapshot (raft's InstallSnapshot). */
  install(from: Member): void {
    this.store.restore(from.store.snapshot());
    this.watches.restart(from.store.appliedIndex);
  }
  source(): FeedSource {
    const store = this.store;
    return {
      get revision() {
        return store.appliedIndex;
      },
      eventsSince: (p, f) => this.watches.eventsSince(p, f),
      range: (p) => store.range(p, undefined, Infinity),
    };
  }
}

const keyArb = fc.constantFrom("a/1", "a/2", "a/3", "ab", "b/1", "b/2");
const commandArb: fc.Arbitrary<KvCommand> = fc.oneof(
  fc.record({
    op: fc.constant("put" as const),
    key: keyArb,
    value: fc.string({ maxLength: 4 }).map(bytes),
  }),
  fc.record({ op: fc.constant("delete" as const), key: keyArb }),
  // Several changes at one revision, which must travel together.
  fc.record({
    op: fc.constant("txn" as const),
    compare: fc.constant(null).map(() => []),
    success: fc.array(
      fc.oneof(
        fc.record({
          op: fc.constant("put" as const),
          key: keyArb,
          value: fc.string({ maxLength: 4 }).map(bytes),
        }),
        fc.record({ op: fc.constant("delete" as const), key: keyArb }),
      ),
      { maxLength: 3 },
    ),
    failure: fc.constant(null).map(() => []),
  }),
  // A command that changes no key (the revision still advances).
  fc.record({
    op: fc.constant("session_open" as const),
    ttlMs: fc.constant(1000),
    now: fc.constant(0),
  }),
);

type Action =
  | { a: "apply"; member: number; n: number }
  | { a: "deliver" }
  | { a: "drop"; to: number }
  | { a: "install"; member: number };

const actionArb: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      a: fc.constant("apply" as const),
      member: fc.nat(2),
      n: fc.integer({ min: 1, max: 4 }),
    }),
  },
  { weight: 4, arbitrary: fc.record({ a: fc.constant("deliver" as const) }) },
  {
    weight: 1,
    arbitrary: fc.record({ a: fc.constant("drop" as const), to: fc.nat(2) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      a: fc.constant("install" as const),
      member: fc.nat(2),
    }),
  },
);

/**
 * Sends one step of `member`'s feed to the replica through the codec,
 * cutting the stream after `cut` messages (a disconnect mid-snapshot).
 * @returns the learner's next revision as the member now sees it.
 */
function deliver(
  member: Member,
  replica: LearnerReplica,
  next: number,
  revisions: number[],
  maxChunkBytes: number,
): number {
  const step = nextFeedStep(replica.prefix, next, member.source(), {
    maxChangeBytes: 8,
    maxChunkBytes,
  });
  if (step.kind === "wait") return next;
  if (step.kind === "changes") {
    const m = Changes.decode(Changes.encode(step));
    replica.applyChanges(m.from, m.to, m.changes);
    for (const c of m.changes) revisions.push(c.revision);
    return step.to + 1;
  }
  step.chunks.forEach((entries, i) => {
    const m = SnapshotChunk.decode(
      SnapshotChunk.encode({
        revision: step.revision,
        entries,
        last: i === step.chunks.length - 1,
      }),
    );
    replica.applySnapshotChunk(m.revision, m.entries, m.last);
  });
  revisions.push(-step.revision - 1); // a snapshot marker (negative)
  return step.revision + 1;
}

Deno.test("a learner moved between members, dropped and compacted at random ends equal to a member at its revision, every change once", () => {
  fc.assert(
    fc.property(
      fc.array(commandArb, { minLength: 1, maxLength: 40 }),
      fc.array(actionArb, { maxLength: 80 }),
      fc.integer({ min: 1, max: 8 }),
      fc.constantFrom("a/", "", "b/", "a"),
      fc.option(fc.integer({ min: 1, max: 10 }), { nil: undefined }),
      fc.integer({ min: 1, max: 16 }),
      (log, actions, capacity, prefix, wanted, chunkBytes) => {
        // A start past the end of the log would wait forever: keep it inside.
        const from = wanted === undefined
          ? undefined
          : Math.min(wanted, log.length);
        const members = [0, 1, 2].map((i) => new Member(capacity + i * 5));
        const applied = [0, 0, 0];
        const replica = new LearnerReplica(prefix, from);
        let at = 0; // the member streaming to the learner
        let next = replica.resumeFrom;
        const revisions: number[] = [];
        const applyTo = (m: number, n: number) => {
          for (let k = 0; k < n && applied[m]! < log.length; k++) {
            applied[m]!++;
            members[m]!.apply(applied[m]!, log[applied[m]! - 1]!);
          }
        };
        for (const act of actions) {
          if (act.a === "apply") applyTo(act.member, act.n);
          else if (act.a === "deliver") {
            next = deliver(members[at]!, replica, next, revisions, chunkBytes);
          } else if (act.a === "drop") {
            replica.dropPartial();
            at = act.to;
            next = replica.resumeFrom; // resubscribe where the replica stands
          } else {
            // A member jumps ahead by installing the most advanced one's snapshot.
            const best = applied.indexOf(Math.max(...applied));
            if (best !== act.member && applied[best]! > applied[act.member]!) {
              members[act.member]!.install(members[best]!);
              applied[act.member] = applied[best]!;
            }
          }
        }
        // Everyone catches up; the learner drains its member.
        for (let m = 0; m < 3; m++) applyTo(m, log.length);
        for (let i = 0; i < log.length + 5; i++) {
          next = deliver(members[at]!, replica, next, revisions, chunkBytes);
        }
        const truth = members[at]!.store;
        assert.equal(replica.revision, truth.appliedIndex);
        // Every change since the last snapshot (or since `from`) arrived once, in order.
        const lastSnap = revisions.findLastIndex((r) => r < 0);
        const base = lastSnap >= 0
          ? -revisions[lastSnap]! - 1
          : (from ?? 1) - 1;
        const got = revisions.slice(lastSnap + 1);
        const want: number[] = [];
        const model = new KvStateMachine();
        const events: number[] = [];
        log.forEach((c, i) => {
          const out = model.apply(i + 1, c);
          for (const e of out?.events ?? []) {
            if (e.key.startsWith(prefix) && e.revision > base) {
              events.push(e.revision);
            }
          }
        });
        want.push(...events);
        assert.deepEqual(got, want);
        if (lastSnap >= 0 || from === undefined) {
          assert.deepEqual(
            replica.scan().map((e) => [e.key, [...e.value], e.revision]),
            truth.range(prefix, undefined, Infinity).map((
              kv,
            ) => [kv.key, [...kv.value], kv.modRevision]),
          );
        }
      },
    ),
    { numRuns: RUNS },
  );
});

Deno.test("a replica refuses a gap, a duplicate, changes outside its prefix and a snapshot older than itself", () => {
  const r = new LearnerReplica("a/", 5);
  assert.equal(r.resumeFrom, 5);
  const expect = (code: string, fn: () => unknown) =>
    assert.throws(
      fn,
      (e) => e instanceof LearnerStreamError && e.code === code,
    );
  expect("gap", () => r.applyChanges(6, 7, []));
  expect("duplicate", () => r.applyChanges(4, 7, []));
  expect(
    "malformed",
    () => r.applyChanges(5, 7, [{ key: "b/1", value: null, revision: 6 }]),
  );
  expect(
    "malformed",
    () => r.applyChanges(5, 7, [{ key: "a/1", value: null, revision: 8 }]),
  );
  expect("malformed", () =>
    r.applyChanges(5, 7, [
      { key: "a/1", value: null, revision: 7 },
      { key: "a/2", value: null, revision: 6 },
    ]));
  // Nothing was applied by the refused messages.
  assert.equal(r.revision, 4);
  r.applyChanges(5, 9, [{ key: "a/1", value: bytes("x"), revision: 6 }]);
  assert.equal(r.revision, 9);
  assert.equal(r.get("a/1")?.revision, 6);
  expect("duplicate", () => r.applySnapshotChunk(8, [], true));
  // A snapshot in two chunks replaces the state only when complete.
  assert.equal(
    r.applySnapshotChunk(
      12,
      [{ key: "a/2", value: bytes("y"), revision: 11 }],
      false,
    ),
    undefined,
  );
  assert.equal(r.get("a/1")?.revision, 6);
  expect("malformed", () => r.applyChanges(10, 12, []));
  r.applySnapshotChunk(
    12,
    [{ key: "a/3", value: bytes("z"), revision: 3 }],
    true,
  );
  assert.deepEqual(r.scan().map((e) => e.key), ["a/2", "a/3"]);
  assert.equal(r.revision, 12);
});

Deno.test("a new replica asks for a snapshot and accepts no changes before it", () => {
  const r = new LearnerReplica("");
  assert.equal(r.resumeFrom, 0);
  assert.throws(() => r.applyChanges(1, 1, []), LearnerStreamError);
  r.applySnapshotChunk(3, [], true);
  assert.equal(r.resumeFrom, 4);
});

Deno.test("a member's feed waits for a learner ahead of it, and cuts large batches between revisions only", () => {
  const m = new Member(100);
  const big = new Uint8Array(10);
  m.apply(1, { op: "put", key: "k1", value: big });
  m.apply(2, {
    op: "txn",
    compare: [],
    success: [{ op: "put", key: "k2", value: big }, {
      op: "put",
      key: "k3",
      value: big,
    }],
    failure: [],
  });
  m.apply(3, { op: "put", key: "k4", value: big });
  assert.deepEqual(nextFeedStep("", 4, m.source()), { kind: "wait" });
  const step = nextFeedStep("", 1, m.source(), {
    maxChangeBytes: 15,
    maxChunkBytes: 1,
  });
  assert.equal(step.kind, "changes");
  if (step.kind !== "changes") return;
  // 1 alone is 12 bytes (under 15); revision 2's two changes go together.
  assert.deepEqual(step.changes.map((c) => c.revision), [1, 2, 2]);
  assert.equal(step.to, 2);
  const snap = nextFeedStep("", 0, m.source(), {
    maxChangeBytes: 15,
    maxChunkBytes: 1,
  });
  assert.equal(snap.kind, "snapshot");
  if (snap.kind === "snapshot") {
    assert.equal(snap.revision, 3);
    assert.equal(snap.chunks.length, 4);
  }
});

Deno.test("installing a snapshot ends the hub's open watches as compacted instead of skipping changes", async () => {
  const hub = new WatchHub();
  hub.publish([{ type: "put", key: "k", revision: 1 }]);
  const it = hub.watch("", 1, new AbortController().signal);
  assert.equal((await it.next()).value?.revision, 1);
  hub.restart(50);
  await assert.rejects(
    () => it.next(),
    (e: Error & { code?: string }) => e.code === "compacted",
  );
  assert.equal(hub.oldestRevision, 51);
  assert.equal(hub.eventsSince("", 10), undefined);
  assert.deepEqual(hub.eventsSince("", 51), []);
});

Deno.test("a revision whose transaction was partly evicted from the history is compacted, not served in part", () => {
  const hub = new WatchHub(1);
  hub.publish([
    { type: "put", key: "a", revision: 1 },
    { type: "put", key: "b", revision: 2 },
    { type: "put", key: "c", revision: 2 },
  ]);
  assert.equal(hub.oldestRevision, 3);
  assert.equal(hub.eventsSince("", 2), undefined);
});
