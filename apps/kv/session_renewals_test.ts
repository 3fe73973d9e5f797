import assert from "node:assert/strict";
import fc from "fast-check";
import { type SessionDeadline, SessionRenewals } from "./session_renewals.ts";

const s = (id: number, expiresAt: number, ttlMs = 1000): SessionDeadline => ({
  id,
  ttlMs,
  expiresAt,
});

Deno.test("a leader's in-memory renewal keeps a session whose deadline in the state has passed", () => {
  const r = new SessionRenewals();
  r.leaderChanged(true, 0);
  assert.equal(r.renew(s(1, 500), 400, 450), 1400);
  // The state still says 500: the plan writes the renewal, expires nothing.
  assert.deepEqual(r.planExpiry([s(1, 500)], 900), {
    flush: [{ id: 1, now: 400 }],
    due: [],
  });
  assert.deepEqual(r.planExpiry([s(1, 500)], 1400), { flush: [], due: [1] });
});

Deno.test("a new leader counts every session renewed at its takeover, and only a leader renews in memory", () => {
  const r = new SessionRenewals();
  assert.equal(r.renew(s(1, 500), 100, 100), undefined); // a follower
  r.leaderChanged(true, 2000);
  assert.equal(r.deadline(s(1, 500)), 3000);
  assert.deepEqual(r.planExpiry([s(1, 500)], 2999).due, []);
  assert.deepEqual(r.planExpiry([s(1, 500)], 3000).due, [1]);
  r.leaderChanged(false, 2500);
  assert.equal(r.renew(s(1, 500), 2500, 2500), undefined);
});

Deno.test("a session already due is not renewed in memory (its keep-alive goes through the log, after a pending expiry)", () => {
  const r = new SessionRenewals();
  r.leaderChanged(true, 0);
  assert.equal(r.renew(s(1, 500), 1000, 1000), undefined);
  assert.equal(r.renew(s(1, 500), 999, 999), 1999);
});

/**
 * The promise, as a model: a keep-alive acknowledged (in memory on a
 * leader, or a session opened or renewed through the log) at time t keeps
 * the session out of every expiry plan before t + ttl, across leader
 * changes (a new leader takes over only after every earlier leader's
 * acknowledgements: the caller confirms leadership before renewing).
 */
Deno.test("property: no expiry plan names a session before its last acknowledged keep-alive + ttl", () => {
  type Ev =
    | { k: "tick"; dt: number }
    | { k: "ka"; id: number }
    | { k: "log"; id: number }
    | { k: "leader"; leading: boolean }
    | { k: "plan" };
  const ev = fc.oneof(
    fc.record({
      k: fc.constant("tick" as const),
      dt: fc.integer({ min: 0, max: 400 }),
    }),
    fc.record({
      k: fc.constant("ka" as const),
      id: fc.integer({ min: 1, max: 3 }),
    }),
    fc.record({
      k: fc.constant("log" as const),
      id: fc.integer({ min: 1, max: 3 }),
    }),
    fc.record({ k: fc.constant("leader" as const), leading: fc.boolean() }),
    fc.constant({ k: "plan" as const }),
  );
  fc.assert(
    fc.property(
      fc.array(ev, { maxLength: 60, size: "medium" }),
      (evs: Ev[]) => {
        const ttl = 300;
        let now = 0;
        const r = new SessionRenewals();
        r.leaderChanged(true, 0);
        // The replicated state: sessions opened at 0.
        const state = new Map([1, 2, 3].map((id) => [id, s(id, ttl, ttl)]));
        const promised = new Map([1, 2, 3].map((id) => [id, ttl]));
        for (const e of evs) {
          if (e.k === "tick") now += e.dt;
          else if (e.k === "leader") r.leaderChanged(e.leading, now);
          else if (e.k === "ka" || e.k === "log") {
            const cur = state.get(e.id);
            if (!cur) continue;
            const inMemory = e.k === "ka" ? r.renew(cur, now, now) : undefined;
            if (inMemory === undefined) {
              // Through the log (a follower, or a due session).
              cur.expiresAt = Math.max(cur.expiresAt, now + ttl);
            }
            promised.set(e.id, Math.max(promised.get(e.id)!, now + ttl));
          } else if (r.leading) {
            const plan = r.planExpiry([...state.values()], now);
            for (const f of plan.flush) {
              const cur = state.get(f.id)!;
              cur.expiresAt = Math.max(cur.expiresAt, f.now + ttl);
            }
            for (const id of plan.due) {
              assert.ok(
                promised.get(id)! <= now,
                `session ${id} expired at ${now}, promised until ${
                  promised.get(id)
                }`,
              );
              // The expiry applies by the state's rule: only due sessions.
              assert.ok(state.get(id)!.expiresAt <= now);
              state.delete(id);
            }
            for (const [id, cur] of state) {
              assert.ok(
                cur.expiresAt > now,
                `session ${id} left due after its plan`,
              );
            }
          }
        }
      },
    ),
    { numRuns: 1000 },
  );
});
