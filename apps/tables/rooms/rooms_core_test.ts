/**
 * The pure parts of the rooms: the server bitmap, a home's rooms, the
 * receiving side's order, Redis globs, and the home key.
 */
import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import {
  addServer,
  hasServer,
  NO_SERVERS,
  noServers,
  removeServer,
  type ServerBits,
  serversOf,
  unionServers,
} from "./server_bits.ts";
import { RoomHome } from "./room_home.ts";
import { RoomOrder } from "./room_order.ts";
import { redisGlob } from "../shared/redis_glob.ts";
import { homeKey } from "./room_key.ts";

Deno.test("server bits: a number up to 32 servers, words past that; same answers as a Set", () => {
  let b: ServerBits = NO_SERVERS;
  const model = new Set<number>();
  let seed = 7;
  const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) >>> 0) % n;
  for (let step = 0; step < 2000; step++) {
    const i = rnd(step < 1000 ? 32 : 80);
    if (rnd(3) === 0) {
      b = removeServer(b, i);
      model.delete(i);
    } else {
      b = addServer(b, i);
      model.add(i);
    }
    deepStrictEqual(serversOf(b), [...model].sort((x, y) => x - y));
    strictEqual(hasServer(b, i), model.has(i));
    strictEqual(noServers(b), model.size === 0);
    if (step < 1000) strictEqual(typeof b, "number");
  }
  deepStrictEqual(serversOf(unionServers(0b101, addServer(0, 40))), [0, 2, 40]);
  // Back to one number once the high words are empty.
  strictEqual(typeof removeServer(addServer(1, 40), 40), "number");
});

Deno.test("room home: joins, numbering, fan-out targets, a server's new session and its end", () => {
  const home = new RoomHome();
  const tablet = {};
  const rooms = home.tablet(tablet, () => ["a@1", "b@1"], 0);
  ok(!rooms.ready(100, 1000), "waits for every server's sync");
  const a = home.admit("a", 1, 0);
  const b = home.admit("b", 1, 0);
  const start = home.join(rooms, "r", a);
  strictEqual(start.seq, 0);
  home.join(rooms, "r", b);
  rooms.waitingFor.delete("a@1");
  rooms.waitingFor.delete("b@1");
  ok(rooms.ready(100, 1000));
  const m1 = home.publish(rooms, "r");
  deepStrictEqual([m1.epoch, m1.seq, m1.to], [start.epoch, 1, [a, b]]);
  // Patterns get every publish, even of a room nobody joined.
  const c = home.admit("c", 5, 0);
  home.patterns(c, true);
  deepStrictEqual(home.publish(rooms, "other").to, [c]);
  deepStrictEqual(home.publish(rooms, "r").to, [a, b, c]);
  // b comes back with a new session: what it announced before is gone.
  home.admit("b", 2, 10);
  deepStrictEqual(home.publish(rooms, "r").to, [a, c]);
  // a's session ends (kv says so, read after a was admitted).
  deepStrictEqual(home.reconcile(new Map([["b", 2], ["c", 5]]), 20), ["a"]);
  deepStrictEqual(home.publish(rooms, "r").to, [c]);
  strictEqual(home.rooms, 0, "an empty room is dropped");
  // An incarnation first seen after the kv read is kept.
  home.admit("d", 9, 30);
  home.join(rooms, "s", home.number("d"));
  deepStrictEqual(home.reconcile(new Map([["b", 2], ["c", 5]]), 25), []);
  strictEqual(home.rooms, 1);
  home.prune(new Set());
  strictEqual(home.tablets, 0);
});

Deno.test("room order: in order, early messages, reordering, stale epochs, a gap skipped after a timeout", () => {
  const stats = { stale: 0, skipped: 0 };
  const o = new RoomOrder<string>(stats);
  const m = (seq: number, epoch = 7) => ({ epoch, seq, value: `m${seq}` });
  deepStrictEqual(o.accept(m(5), 0), []); // before the join's answer
  deepStrictEqual(o.accept(m(4), 0), []);
  deepStrictEqual(o.start(7, 3, 0), ["m4", "m5"]);
  deepStrictEqual(o.accept(m(7), 0), []);
  deepStrictEqual(o.accept(m(6), 0), ["m6", "m7"]);
  deepStrictEqual(o.accept(m(6), 0), []); // twice
  deepStrictEqual(o.accept(m(8, 9), 0), []); // another epoch
  strictEqual(stats.stale, 2);
  deepStrictEqual(o.accept(m(10), 100), []);
  deepStrictEqual(o.expire(200, 3000), []);
  deepStrictEqual(o.expire(3200, 3000), ["m10"]);
  strictEqual(stats.skipped, 2);
  // A re-join (new home, epoch 9): the old home's late messages still come
  // through, once; the new epoch's start as before.
  o.restart();
  deepStrictEqual(o.accept(m(11), 0), ["m11"]);
  deepStrictEqual(o.accept(m(11), 0), []);
  deepStrictEqual(o.accept(m(1, 9), 0), []);
  deepStrictEqual(o.start(9, 0, 0), ["m1"]);
  deepStrictEqual(o.accept(m(12), 0), ["m12"]);
  // Before the start, at/before it is dropped.
  const p = new RoomOrder<string>(stats);
  p.accept(m(2), 0);
  deepStrictEqual(p.start(7, 2, 0), []);
});

Deno.test("redis globs", () => {
  const cases: [string, string, boolean][] = [
    ["news.*", "news.tech", true],
    ["news.*", "news", false],
    ["h?llo", "hello", true],
    ["h?llo", "hllo", false],
    ["h[ae]llo", "hallo", true],
    ["h[ae]llo", "hillo", false],
    ["h[^e]llo", "hallo", true],
    ["h[^e]llo", "hello", false],
    ["h[a-c]llo", "hbllo", true],
    ["a\\*b", "a*b", true],
    ["a\\*b", "axb", false],
    ["*", "", true],
    ["(x)+", "(x)+", true],
    ["[z-a]", "m", true], // as Redis: a reversed range is swapped
  ];
  for (const [p, s, want] of cases) {
    strictEqual(redisGlob(p)(s), want, `${p} ~ ${s}`);
  }
});

Deno.test("home keys spread rooms over the hash prefix", () => {
  const firsts = new Map<string, number>();
  for (let i = 0; i < 8000; i++) {
    const c = String.fromCharCode(homeKey(`room-${i}`)[0]!);
    firsts.set(c, (firsts.get(c) ?? 0) + 1);
  }
  strictEqual(firsts.size, 16);
  for (const n of firsts.values()) ok(n > 350 && n < 650, `${n} of 8000`);
});
