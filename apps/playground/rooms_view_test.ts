import assert from "node:assert/strict";
import { messageText, RoomsBoard } from "./rooms_view.ts";

Deno.test("rooms: the bitmap has a bit per server with a live subscriber; a publish's deliveries and their times are counted per expected subscriber", () => {
  const b = new RoomsBoard();
  const s1 = b.addSubscriber("lobby", "ts1");
  const s3 = b.addSubscriber("lobby", "ts3");
  const late = b.addSubscriber("lobby", "ts2");
  b.subscribed(s1);
  b.subscribed(s3);
  // `late` is still subscribing: not in the bitmap, not expected.
  const n = b.publishing("lobby", "hello", "ts2", 1000);
  b.published(n, { seq: 1, servers: 2, delivered: 2 });
  b.delivered(s1, messageText(n, "hello"), 1004);
  b.delivered(s3, messageText(n, "hello"), 1010);
  b.subscribed(late);
  const v = b.view(["ts3", "ts1", "ts2"]);
  assert.equal(v.rooms.length, 1);
  const room = v.rooms[0]!;
  assert.deepEqual(room.bitmap, [
    { server: "ts1", bit: 1 },
    { server: "ts2", bit: 1 },
    { server: "ts3", bit: 1 },
  ]);
  assert.equal(room.publishes.length, 1);
  const p = room.publishes[0]!;
  assert.deepEqual([p.n, p.data, p.via, p.expected], [n, "hello", "ts2", 2]);
  assert.deepEqual(p.deliveries, [
    { subscriber: s1, server: "ts1", ms: 4 },
    { subscriber: s3, server: "ts3", ms: 10 },
  ]);
  assert.deepEqual(v.latency, { count: 2, p50: 4, max: 10 });
  assert.equal(room.subscribers.find((s) => s.id === s3)!.lastLatencyMs, 10);
});

Deno.test("rooms: an ended stream clears its bit; failed publishes are forgotten; other rooms' and foreign messages are not deliveries; the subscriber limit holds", () => {
  const b = new RoomsBoard({ subscribers: 2, publishesPerRoom: 2 });
  const a = b.addSubscriber("a", "ts1");
  const c = b.addSubscriber("b", "ts2");
  b.subscribed(a);
  b.subscribed(c);
  assert.equal(b.full, true);
  b.ended(c, "server killed");
  assert.equal(b.full, false);
  const view = b.view(["ts1", "ts2"]);
  assert.deepEqual(view.rooms.map((r) => r.bitmap.map((x) => x.bit)), [
    [1, 0],
    [0, 0],
  ]);
  assert.equal(view.rooms[1]!.subscribers[0]!.reason, "server killed");
  const lost = b.publishing("a", "x", "ts1", 0);
  b.failed(lost);
  const n = b.publishing("b", "y", "ts1", 0);
  b.published(n, { seq: 1, servers: 0, delivered: 0 });
  b.delivered(a, messageText(n, "y"), 5); // a message of room b on a's stream
  b.delivered(a, "redis-cli says hi", 5); // published by someone else
  const after = b.view(["ts1", "ts2"]);
  assert.deepEqual(after.rooms[0]!.publishes, []);
  assert.deepEqual(after.rooms[1]!.publishes[0]!.deliveries, []);
  assert.equal(after.rooms[0]!.subscribers[0]!.received, 2);
  assert.equal(after.latency, null);
  for (let i = 0; i < 3; i++) {
    b.published(b.publishing("a", `m${i}`, "ts1", 0), {
      seq: i,
      servers: 1,
      delivered: 1,
    });
  }
  assert.deepEqual(
    b.view(["ts1"]).rooms[0]!.publishes.map((p) => p.data),
    ["m1", "m2"],
  );
});
