import assert from "node:assert/strict";
import type { Message } from "@strata/raft";
import { type Outgoing, SiteRouter } from "./site_router.ts";

const app = (to: number): Outgoing => ({
  m: {
    type: "app",
    from: 1,
    to,
    term: 1,
    index: 0,
    logTerm: 0,
    entries: [],
    commit: 0,
  },
  address: `127.0.0.1:${7000 + to}`,
});
const appResp = (from: number): Message => ({
  type: "appResp",
  from,
  to: 1,
  term: 1,
  index: 1,
  reject: false,
  rejectHint: 0,
  logTerm: 0,
});
const heartbeat = (to: number): Outgoing => ({
  m: { type: "heartbeat", from: 1, to, term: 1, commit: 0, seq: 1, sentAt: 0 },
  address: `127.0.0.1:${7000 + to}`,
});

/** Leader 1 in site a with follower 2; site b holds 3, 4, 5. */
function router(): SiteRouter {
  const r = new SiteRouter({ site: "a", timeoutMs: 100, directMs: 1_000 });
  r.learnSite(2, "a");
  for (const id of [3, 4, 5]) r.learnSite(id, "b");
  return r;
}

const batch = [app(2), app(3), app(4), app(5), heartbeat(3)];

Deno.test("appends go direct until followers of a remote site have answered one", () => {
  const r = router();
  const first = r.route(batch, 0);
  assert.equal(first.relayed.length, 0);
  assert.equal(first.direct.length, 5);
  for (const id of [2, 3, 4, 5]) r.received(appResp(id), 10);
  const next = r.route(batch, 20);
  assert.equal(next.relayed.length, 1);
  const g = next.relayed[0]!;
  assert.equal(g.site, "b");
  assert.equal(g.relay, "127.0.0.1:7003"); // lowest healthy id
  assert.deepEqual(g.items.map((o) => o.m.to), [3, 4, 5]);
  // The local follower and the heartbeat go direct.
  assert.deepEqual(next.direct.map((o) => [o.m.type, o.m.to]), [
    ["app", 2],
    ["heartbeat", 3],
  ]);
  assert.deepEqual(r.status(), [{ site: "b", members: [3, 4, 5], relay: 3 }]);
});

Deno.test("a relay whose appends go unanswered past the timeout is replaced; its site's others keep relaying", () => {
  const r = router();
  for (const id of [3, 4, 5]) r.received(appResp(id), 0);
  assert.equal(r.route(batch, 10).relayed[0]!.relay, "127.0.0.1:7003");
  // 4 and 5 answer through relay 3; relay 3 itself went silent.
  r.received(appResp(4), 50);
  r.received(appResp(5), 50);
  assert.equal(r.route(batch, 60).relayed[0]!.relay, "127.0.0.1:7003");
  const after = r.route(batch, 111); // 101 ms after 3's first unanswered append
  assert.equal(r.fallbacks, 1);
  assert.equal(after.relayed.length, 1);
  assert.equal(after.relayed[0]!.relay, "127.0.0.1:7004");
  assert.deepEqual(after.relayed[0]!.items.map((o) => o.m.to), [4, 5]);
  assert.ok(after.direct.some((o) => o.m.type === "app" && o.m.to === 3));
  assert.equal(r.status()[0]!.relay, 4);
});

Deno.test("relays that keep failing are replaced one by one until everything goes direct", () => {
  const r = router();
  for (const id of [3, 4, 5]) r.received(appResp(id), 0);
  r.route(batch, 10); // relayed via 3; nobody answers
  const second = r.route(batch, 200);
  assert.equal(second.relayed[0]!.relay, "127.0.0.1:7004"); // 3 blamed alone
  // 4 silent too: only 5 is left, the relay of nothing but its own appends.
  const third = r.route(batch, 400);
  assert.equal(third.relayed.length, 0);
  assert.equal(third.direct.length, 5);
  assert.equal(r.fallbacks, 2);
  assert.equal(r.status()[0]!.relay, 5);
  // 5 silent as well: no healthy member, no relay.
  r.received(appResp(3), 399); // (3 is still in its direct period)
  r.route([app(5), app(5)], 401);
  r.route(batch, 700);
  assert.equal(r.status()[0]!.relay, undefined);
  // Direct appends answered, and once directMs passed they are relayed again.
  for (const id of [3, 4, 5]) r.received(appResp(id), 1_500);
  assert.equal(r.route(batch, 1_500).relayed[0]!.relay, "127.0.0.1:7003");
});

Deno.test("a lone append is relayed too (one path per follower keeps its appends in order), unless it is the relay's own", () => {
  const r = router();
  for (const id of [3, 4, 5]) r.received(appResp(id), 0);
  r.route(batch, 1); // learns the addresses
  const lone = r.route([app(4)], 2);
  assert.equal(lone.relayed[0]!.relay, "127.0.0.1:7003");
  assert.deepEqual(lone.relayed[0]!.items.map((o) => o.m.to), [4]);
  const own = r.route([app(3)], 3);
  assert.equal(own.relayed.length, 0);
  assert.deepEqual(own.direct.map((o) => o.m.to), [3]);
});

Deno.test("a site of one member, or peers whose site is unknown, get appends direct", () => {
  const r = new SiteRouter({ site: "a" });
  r.learnSite(3, "b");
  r.received(appResp(3), 0);
  r.received(appResp(4), 0);
  assert.equal(r.route([app(3), app(4)], 1).relayed.length, 0);
  assert.equal(r.crossesSites(3), true);
  assert.equal(r.crossesSites(4), false); // site unknown
});
