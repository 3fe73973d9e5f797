import assert from "node:assert/strict";
import { Evictor, parseMemorySize } from "./eviction.ts";
import { MemoryTablet } from "./memory_tablet.ts";

const enc = new TextEncoder();
const schema = { name: "c", families: [{ name: "v" }] } as never;
const all = { start: new Uint8Array(0), end: null };
const key = (i: number) => `k${String(i).padStart(5, "0")}`;

/** A tablet of `n` keys of 100 bytes, written in key order (older first). */
function filled(n: number, deadline = (_i: number) => 0): MemoryTablet {
  const t = new MemoryTablet(schema, all);
  for (let i = 0; i < n; i++) {
    t.writeValue(key(i), enc.encode("x".repeat(100)), deadline(i));
  }
  return t;
}

Deno.test("parseMemorySize reads Redis' sizes", () => {
  assert.equal(parseMemorySize("1234"), 1234);
  assert.equal(parseMemorySize("100mb"), 100 * 1024 * 1024);
  assert.equal(parseMemorySize("2GB"), 2 * 1024 ** 3);
  assert.equal(parseMemorySize("1k"), 1000);
  assert.equal(parseMemorySize("12q"), undefined);
  assert.equal(parseMemorySize("-1"), undefined);
});

Deno.test("allkeys-lru evicts mostly keys not accessed lately, down to the bound", () => {
  const t = filled(2000);
  // The first half read later: recently used.
  const later = Date.now() + 60_000;
  for (let i = 0; i < 1000; i++) t.getValue(key(i), later);
  const used = t.approximateBytes();
  const ev = new Evictor({
    maxBytes: Math.floor(used * 0.75),
    policy: "allkeys-lru",
  });
  // One call evicts for at most ~2 ms; the next writes go on.
  for (let i = 0; i < 10_000 && t.approximateBytes() > ev.maxBytes; i++) {
    assert.equal(ev.makeRoom([t]), true);
  }
  assert.ok(t.approximateBytes() <= ev.maxBytes);
  assert.ok(ev.evicted >= 450 && ev.evicted <= 550, `evicted ${ev.evicted}`);
  let touchedLost = 0;
  for (let i = 0; i < 1000; i++) {
    if (t.getValue(key(i), later) === undefined) touchedLost++;
  }
  // Sampling 5 keys into a pool of 16 picks an untouched key nearly
  // always (Redis' approximation); exact LRU would lose none.
  assert.ok(
    touchedLost <= ev.evicted * 0.2,
    `${touchedLost} of ${ev.evicted} evicted keys had been read lately`,
  );
});

Deno.test("noeviction refuses over the bound; volatile-lru evicts only keys with an expiry", () => {
  const t = filled(100, (i) => i < 30 ? Date.now() + 600_000 : 0);
  const used = t.approximateBytes();
  const no = new Evictor({ maxBytes: used - 1, policy: "noeviction" });
  assert.equal(no.makeRoom([t]), false);
  assert.equal(t.rowCount, 100);
  no.maxBytes = used;
  assert.equal(no.makeRoom([t]), true);
  // volatile-lru: the 30 keys with an expiry go first, then it refuses.
  const v = new Evictor({
    maxBytes: Math.floor(used / 2),
    policy: "volatile-lru",
  });
  assert.equal(v.makeRoom([t]), false);
  assert.equal(v.evicted, 30);
  assert.equal(t.rowCount, 70);
  for (let i = 30; i < 100; i++) assert.ok(t.hasKey(key(i), Date.now()));
  // allkeys-random then brings it down to the bound.
  const r = new Evictor({
    maxBytes: Math.floor(used / 2),
    policy: "allkeys-random",
  });
  for (let i = 0; i < 10_000 && t.approximateBytes() > r.maxBytes; i++) {
    assert.equal(r.makeRoom([t]), true);
  }
  assert.ok(t.approximateBytes() <= r.maxBytes);
  // Sampling stays consistent with deletes (swap-remove of the slots).
  for (let i = 0; i < 100; i++) t.deleteKey(key(i), Date.now());
  assert.equal(t.rowCount, 0);
  assert.deepEqual(t.sample(5), []);
});
