import assert from "node:assert/strict";
import fc from "fast-check";
import { z } from "zod";
import { defineMessage } from "@strata/codec";
import type { KvCommand } from "./kv_commands.ts";
import { KvStateMachine, LOCK_PREFIX } from "./kv_state_machine.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) => b && new TextDecoder().decode(b);

function applyAll(sm: KvStateMachine, cmds: KvCommand[], from = 1) {
  return cmds.map((c, i) => sm.apply(from + i, c)!.result);
}

Deno.test("puts, deletes and revisions follow etcd's rules", () => {
  const sm = new KvStateMachine();
  const [p1, p2, d1, d2, p3] = applyAll(sm, [
    { op: "put", key: "a", value: enc("1") },
    { op: "put", key: "a", value: enc("2") },
    { op: "delete", key: "a" },
    { op: "delete", key: "a" },
    { op: "put", key: "a", value: enc("3") },
  ]);
  assert.deepEqual(p1, { op: "put", revision: 1, prev: undefined });
  assert.equal(p2?.op === "put" && dec(p2.prev?.value), "1");
  assert.deepEqual(d1, { op: "delete", revision: 3, deleted: true });
  assert.deepEqual(d2, { op: "delete", revision: 4, deleted: false });
  assert.equal(p3?.revision, 5);
  const kv = sm.get("a")!;
  assert.equal(kv.createRevision, 5);
  assert.equal(kv.version, 1);
  assert.equal(sm.appliedIndex, 5);
});

Deno.test("applying an index twice is a no-op, so log replay is harmless", () => {
  const sm = new KvStateMachine();
  assert.ok(sm.apply(1, { op: "put", key: "k", value: enc("v") }));
  assert.equal(
    sm.apply(1, { op: "put", key: "k", value: enc("w") }),
    undefined,
  );
  assert.equal(dec(sm.get("k")?.value), "v");
  sm.skip(5);
  assert.equal(sm.apply(4, { op: "delete", key: "k" }), undefined);
  assert.equal(sm.appliedIndex, 5);
});

Deno.test("compare-and-swap checks value or revision and reports the current value", () => {
  const sm = new KvStateMachine();
  const r = applyAll(sm, [
    { op: "cas", key: "x", expectValue: null, value: enc("a") },
    { op: "cas", key: "x", expectValue: null, value: enc("b") },
    { op: "cas", key: "x", expectValue: enc("a"), value: enc("c") },
    { op: "cas", key: "x", expectRevision: 1, value: enc("d") },
    { op: "cas", key: "x", expectRevision: 3, value: null },
  ]);
  assert.deepEqual(r.map((x) => x?.op === "cas" && x.succeeded), [
    true,
    false,
    true,
    false,
    true,
  ]);
  const failed = r[1];
  assert.equal(failed?.op === "cas" && dec(failed.current?.value), "a");
  assert.equal(sm.get("x"), undefined);
});

Deno.test("a transaction applies one branch atomically", () => {
  const sm = new KvStateMachine();
  applyAll(sm, [{ op: "put", key: "stock", value: enc("1") }]);
  const txn = (expect: string): KvCommand => ({
    op: "txn",
    compare: [{ key: "stock", target: "value", op: "==", value: enc(expect) }],
    success: [{ op: "put", key: "stock", value: enc("0") }, {
      op: "put",
      key: "order",
      value: enc("ok"),
    }],
    failure: [{ op: "get", key: "stock" }],
  });
  const [ok] = applyAll(sm, [txn("1")], 2);
  const [fail] = applyAll(sm, [txn("1")], 3);
  assert.equal(ok?.op === "txn" && ok.succeeded, true);
  assert.equal(fail?.op === "txn" && fail.succeeded, false);
  assert.equal(fail?.op === "txn" && dec(fail.results[0]?.kv?.value), "0");
  assert.equal(dec(sm.get("order")?.value), "ok");
});

Deno.test("keys bound to a session vanish when the session expires or closes", () => {
  const sm = new KvStateMachine();
  const [open] = applyAll(sm, [{
    op: "session_open",
    ttlMs: 1000,
    now: 10_000,
  }]);
  assert.equal(open?.op, "session_open");
  const id = open!.op === "session_open" ? open.id : 0;
  const out = sm.apply(2, {
    op: "put",
    key: "svc/a",
    value: enc("up"),
    session: id,
  })!;
  assert.equal(out.events.length, 1);
  sm.apply(3, { op: "session_keepalive", id, now: 10_500 });
  assert.deepEqual(sm.expiredSessions(11_000), []);
  assert.deepEqual(sm.expiredSessions(11_500), [id]);
  const expired = sm.apply(4, { op: "expire", now: 11_500 })!;
  assert.deepEqual(expired.result, {
    op: "expire",
    revision: 4,
    expired: [id],
  });
  assert.deepEqual(expired.events, [{
    type: "delete",
    key: "svc/a",
    revision: 4,
  }]);
  assert.equal(sm.get("svc/a"), undefined);
  const late = sm.apply(5, {
    op: "put",
    key: "svc/b",
    value: enc("x"),
    session: id,
  })!;
  assert.equal(late.result.op, "error");
  assert.equal(sm.get("svc/b"), undefined);
});

Deno.test("session_expire ends the sessions it names, except one renewed by an entry after its decision, whatever the deadlines say", () => {
  const sm = new KvStateMachine();
  // Deadlines far in the future (a proposer with a fast clock): they do not count.
  applyAll(sm, [
    { op: "session_open", ttlMs: 1000, now: 9_000_000_000 },
    { op: "session_open", ttlMs: 1000, now: 9_000_000_000 },
    { op: "session_open", ttlMs: 1000, now: 10 },
    { op: "put", key: "k1", value: enc("a"), session: 1 },
    { op: "put", key: "k2", value: enc("b"), session: 2 },
  ]);
  assert.equal(sm.session(2)?.renewedAt, 2);
  // Decided at index 5; session 2 is renewed at 6, before the expiry applies.
  sm.apply(6, { op: "session_keepalive", id: 2, now: 0 });
  assert.equal(sm.session(2)?.renewedAt, 6);
  const out = sm.apply(7, { op: "session_expire", ids: [1, 2, 99], asOf: 5 })!;
  assert.deepEqual(out.result, { op: "expire", revision: 7, expired: [1] });
  assert.deepEqual(out.events, [{ type: "delete", key: "k1", revision: 7 }]);
  assert.equal(sm.session(1), undefined);
  assert.ok(sm.session(2));
  // Session 3 (deadline long past) is not named: it stays.
  assert.ok(sm.session(3));
});

Deno.test("a snapshot of the format before renewedAt restores, its sessions renewed at its index", () => {
  const old = defineMessage(
    "KvSnapshot",
    z.object({
      appliedIndex: z.number().int().nonnegative(),
      keys: z.array(z.object({
        key: z.string(),
        value: z.custom<Uint8Array>((v) => v instanceof Uint8Array),
        createRevision: z.number().int(),
        modRevision: z.number().int(),
        version: z.number().int(),
        session: z.number().int().optional(),
      })),
      sessions: z.array(z.object({
        id: z.number().int(),
        ttlMs: z.number().int(),
        expiresAt: z.number().int(),
      })),
    }),
  );
  const sm = new KvStateMachine();
  sm.restore(old.encode({
    appliedIndex: 40,
    keys: [{
      key: "k",
      value: enc("v"),
      createRevision: 12,
      modRevision: 12,
      version: 1,
      session: 11,
    }],
    sessions: [{ id: 11, ttlMs: 500, expiresAt: 1234 }],
  }));
  assert.deepEqual(sm.session(11), {
    id: 11,
    ttlMs: 500,
    expiresAt: 1234,
    renewedAt: 40,
  });
  assert.equal(dec(sm.get("k")?.value), "v");
  // The key is still bound to it.
  sm.apply(41, { op: "session_expire", ids: [11], asOf: 40 });
  assert.equal(sm.get("k"), undefined);
});

Deno.test("a lock has one holder, a fencing token, and is released with its session", () => {
  const sm = new KvStateMachine();
  const [s1, s2] = applyAll(sm, [
    { op: "session_open", ttlMs: 5000, now: 0 },
    { op: "session_open", ttlMs: 5000, now: 0 },
  ]);
  const a = s1!.op === "session_open" ? s1.id : 0;
  const b = s2!.op === "session_open" ? s2.id : 0;
  const [l1, l2, l1again] = applyAll(sm, [
    { op: "lock", name: "master", session: a },
    { op: "lock", name: "master", session: b },
    { op: "lock", name: "master", session: a },
  ], 3);
  assert.deepEqual(l1, {
    op: "lock",
    revision: 3,
    acquired: true,
    token: 3,
    holder: a,
  });
  assert.deepEqual(l2, {
    op: "lock",
    revision: 4,
    acquired: false,
    token: 3,
    holder: a,
  });
  assert.deepEqual(l1again, {
    op: "lock",
    revision: 5,
    acquired: true,
    token: 3,
    holder: a,
  });
  applyAll(sm, [{ op: "session_close", id: a }], 6);
  assert.equal(sm.get(LOCK_PREFIX + "master"), undefined);
  const [l3] = applyAll(sm, [{ op: "lock", name: "master", session: b }], 7);
  assert.deepEqual(l3, {
    op: "lock",
    revision: 7,
    acquired: true,
    token: 7,
    holder: b,
  });
  const [u] = applyAll(sm, [{ op: "unlock", name: "master", session: a }], 8);
  assert.deepEqual(u, { op: "unlock", revision: 8, released: false });
});

Deno.test("range scans are ordered, prefixed and paginated", () => {
  const sm = new KvStateMachine();
  applyAll(
    sm,
    ["b/2", "a/1", "b/1", "b/3", "c"].map((key) => ({
      op: "put" as const,
      key,
      value: enc(key),
    })),
  );
  assert.deepEqual(sm.range("b/", undefined, 10).map((k) => k.key), [
    "b/1",
    "b/2",
    "b/3",
  ]);
  assert.deepEqual(sm.range("b/", "b/1", 1).map((k) => k.key), ["b/2"]);
  assert.deepEqual(sm.range("", "a/1", 2).map((k) => k.key), ["b/1", "b/2"]);
  assert.deepEqual(sm.range("z", undefined, 10), []);
});

const keyArb = fc.constantFrom("a", "b", "c", "d");
const valArb = fc.constantFrom("1", "2", "3").map(enc);
const cmdArb: fc.Arbitrary<KvCommand> = fc.oneof(
  fc.record({ op: fc.constant("put" as const), key: keyArb, value: valArb }),
  fc.record({ op: fc.constant("delete" as const), key: keyArb }),
  fc.record({
    op: fc.constant("cas" as const),
    key: keyArb,
    expectValue: fc.option(valArb),
    value: fc.option(valArb),
  }),
  fc.record({
    op: fc.constant("session_open" as const),
    ttlMs: fc.constantFrom(10, 100),
    now: fc.nat(200),
  }),
  fc.record({ op: fc.constant("expire" as const), now: fc.nat(400) }),
  fc.record({
    op: fc.constant("session_keepalive" as const),
    id: fc.nat(40),
    now: fc.nat(200),
  }),
  fc.record({
    op: fc.constant("session_expire" as const),
    ids: fc.array(fc.nat(40), { maxLength: 5 }),
    asOf: fc.nat(40),
  }),
);

Deno.test("a snapshot restores an identical state machine (property)", () => {
  fc.assert(
    fc.property(
      fc.array(cmdArb, { maxLength: 40 }),
      fc.array(cmdArb, { maxLength: 10 }),
      (cmds, more) => {
        const sm = new KvStateMachine();
        applyAll(sm, cmds);
        const copy = new KvStateMachine();
        copy.restore(sm.snapshot());
        assert.deepEqual(
          copy.range("", undefined, 1000),
          sm.range("", undefined, 1000),
        );
        assert.equal(copy.appliedIndex, sm.appliedIndex);
        assert.deepEqual([...copy.sessions()], [...sm.sessions()]);
        // Both go on identically from there.
        const a = applyAll(sm, more, sm.appliedIndex + 1);
        const b = applyAll(copy, more, copy.appliedIndex + 1);
        assert.deepEqual(b, a);
      },
    ),
    { numRuns: 200 },
  );
});
