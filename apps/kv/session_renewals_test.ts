import assert from "node:assert/strict";
import fc from "fast-check";
import { SessionRenewals, type SessionTtl } from "./session_renewals.ts";

const s = (id: number, ttlMs = 1000): SessionTtl => ({ id, ttlMs });

Deno.test("a session is due its TTL after its last renewal on the leader's monotonic clock, not before", () => {
  const r = new SessionRenewals();
  r.leaderChanged(true, 0);
  assert.equal(r.renew(s(1), 400, 450), 1400);
  assert.deepEqual(r.due([s(1)], 1399), []);
  assert.deepEqual(r.due([s(1)], 1400), [1]);
});

Deno.test("a new leader counts every session renewed at its takeover, and only a leader renews in memory", () => {
  const r = new SessionRenewals();
  assert.equal(r.renew(s(1), 100, 100), undefined); // a follower
  assert.deepEqual(r.due([s(1)], 10_000), []); // a follower expires nothing
  r.leaderChanged(true, 2000);
  assert.equal(r.deadline(s(1)), 3000);
  assert.deepEqual(r.due([s(1)], 2999), []);
  assert.deepEqual(r.due([s(1)], 3000), [1]);
  r.leaderChanged(false, 2500);
  assert.equal(r.renew(s(1), 2500, 2500), undefined);
});

Deno.test("an open or keep-alive applied on the leader renews the session from that moment", () => {
  const r = new SessionRenewals();
  r.leaderChanged(true, 0);
  r.renewedByLog(7, 5000);
  assert.deepEqual(r.due([s(7)], 5999), []);
  assert.deepEqual(r.due([s(7)], 6000), [7]);
  // An older renewal does not move it back.
  r.renewedByLog(7, 4000);
  assert.equal(r.deadline(s(7)), 6000);
});

Deno.test("a session already due is not renewed in memory (its keep-alive goes through the log, after a pending expiry)", () => {
  const r = new SessionRenewals();
  r.leaderChanged(true, 0);
  assert.equal(r.renew(s(1), 1000, 1000), undefined);
  assert.equal(r.renew(s(1), 999, 999), 1999);
});

/**
 * The promise, as a model of the leader and the log: a session opened or
 * kept alive at time t (in memory on a leader, or through the log) is not
 * ended by any `session_expire` before t + ttl, across leader changes and
 * with keep-alives between an expiry's decision and its application; and a
 * leader names every session silent for its TTL since its last renewal or
 * the takeover (so none lives on for ever). Time is the monotonic clock:
 * no wall clock is an input any more.
 */
Deno.test("property: no session ends before its last acknowledged keep-alive + ttl, and every silent one is named", () => {
  type Ev =
    | { k: "tick"; dt: number }
    | { k: "ka"; id: number }
    | { k: "open" }
    | { k: "leader"; leading: boolean; keepPending: boolean }
    | { k: "plan" }
    | { k: "apply" };
  const ev = fc.oneof(
    fc.record({
      k: fc.constant("tick" as const),
      dt: fc.integer({ min: 0, max: 400 }),
    }),
    fc.record({
      k: fc.constant("ka" as const),
      id: fc.integer({ min: 1, max: 5 }),
    }),
    fc.constant({ k: "open" as const }),
    fc.record({
      k: fc.constant("leader" as const),
      leading: fc.boolean(),
      keepPending: fc.boolean(),
    }),
    fc.constant({ k: "plan" as const }),
    fc.constant({ k: "apply" as const }),
  );
  fc.assert(
    fc.property(
      fc.array(ev, { maxLength: 80, size: "medium" }),
      (evs: Ev[]) => {
        const ttl = 300;
        let now = 0;
        let index = 3;
        let takeover = 0;
        let nextId = 4;
        const r = new SessionRenewals();
        r.leaderChanged(true, 0);
        // The replicated state: sessions opened at 0, entries 1-3.
        const state = new Map(
          [1, 2, 3].map((id) => [id, { ...s(id, ttl), renewedAt: id }]),
        );
        const promised = new Map([1, 2, 3].map((id) => [id, ttl]));
        let pending: { ids: number[]; asOf: number } | undefined;
        const apply = () => {
          if (!pending) return;
          index++;
          for (const id of pending.ids) {
            const cur = state.get(id);
            if (!cur || cur.renewedAt > pending.asOf) continue;
            assert.ok(
              promised.get(id)! <= now,
              `session ${id} ended at ${now}, promised until ${
                promised.get(id)
              }`,
            );
            state.delete(id);
            r.forget(id);
          }
          pending = undefined;
        };
        const throughLog = (id: number) => {
          const cur = state.get(id)!;
          cur.renewedAt = ++index;
          r.renewedByLog(id, now);
        };
        for (const e of evs) {
          if (e.k === "tick") now += e.dt;
          else if (e.k === "leader") {
            // The log orders an earlier leader's expiry before the new
            // term's first entry, or the new leader truncates it.
            if (e.keepPending) apply();
            pending = undefined;
            r.leaderChanged(e.leading, now);
            takeover = now;
          } else if (e.k === "open") {
            const id = nextId++;
            state.set(id, { ...s(id, ttl), renewedAt: ++index });
            r.renewedByLog(id, now);
            promised.set(id, now + ttl);
          } else if (e.k === "ka") {
            const cur = state.get(e.id);
            if (!cur) continue;
            if (r.renew(cur, now, now) === undefined) throughLog(e.id);
            promised.set(e.id, Math.max(promised.get(e.id)!, now + ttl));
          } else if (e.k === "apply") apply();
          else if (r.leading && !pending) {
            const ids = r.due(state.values(), now);
            for (const [id] of state) {
              const silent = Math.max(takeover + ttl, promised.get(id)!) <=
                now;
              assert.equal(ids.includes(id), silent, `session ${id}`);
            }
            if (ids.length > 0) pending = { ids, asOf: index };
          }
        }
      },
    ),
    { numRuns: 1000 },
  );
});
