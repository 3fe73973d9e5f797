/**
 * `home_memory.ts`: the memory a room's home state takes, measured in
 * one process: N rooms (names `room-<i>`, kept by the home as map keys)
 * joined by two servers each and numbered once, heap after a forced GC
 * minus heap before, over N.
 *
 *     deno run --v8-flags=--expose-gc apps/tables/rooms/home_memory.ts [N]
 */
import { RoomHome } from "./room_home.ts";

const n = Number(Deno.args[0] ?? 100_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --v8-flags=--expose-gc");
gc();
const before = Deno.memoryUsage().heapUsed;
const home = new RoomHome();
const tablet = home.tablet({}, () => [], 0);
const [a, b] = [home.admit("ts1", 1, 0), home.admit("ts2", 2, 0)];
for (let i = 0; i < n; i++) {
  const r = `room-${i}`;
  home.join(tablet, r, a);
  home.join(tablet, r, b);
  home.publish(tablet, r);
}
gc();
const after = Deno.memoryUsage().heapUsed;
console.log(JSON.stringify({
  rooms: home.rooms,
  bytesPerRoom: Math.round((after - before) / n),
}));
