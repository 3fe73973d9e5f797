import { deepStrictEqual, equal, ok } from "node:assert/strict";
import { LoadMeter, medianSplitKey } from "./load_meter.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const k = (s: string) => enc.encode(s);
const all = { start: new Uint8Array(0), end: null };

Deno.test("load window: rates count only the window's slots, over the time covered", () => {
  let now = 1000;
  const m = new LoadMeter({ windowMs: 10_000, slots: 10, now: () => now });
  // Young tablet: 50 writes in its first 2 s read as 25/s, not 5/s.
  for (let i = 0; i < 50; i++) m.write(k("a"));
  now += 2000;
  equal(m.snapshot().writesPerSec, 25);
  // 10 reads; 20 s later everything has left the window.
  for (let i = 0; i < 10; i++) m.read(k("b"));
  now += 3000; // 5 s old: 50 writes / 5 s, 10 reads / 5 s
  deepStrictEqual(m.snapshot(), {
    writesPerSec: 10,
    readsPerSec: 2,
    writes: 50,
    reads: 10,
  });
  now += 20_000;
  const s = m.snapshot();
  equal(s.writesPerSec, 0);
  equal(s.readsPerSec, 0);
  equal(s.writes, 50, "totals stay");
  // A steady 100/s over a full window reads as 100/s.
  for (let t = 0; t < 100; t++) {
    now += 100;
    for (let i = 0; i < 10; i++) m.write(k("c"));
  }
  const steady = m.snapshot().writesPerSec;
  ok(steady >= 90 && steady <= 110, `steady rate ${steady}`);
});

Deno.test("split key: the median of recent keys, inside the range, never its start", () => {
  const keys = ["a", "b", "c", "d", "e", "f", "g"].map(k);
  equal(dec.decode(medianSplitKey(keys, all)!), "d");
  // Keys at or before the start, or at or after the end, do not count.
  equal(
    dec.decode(medianSplitKey(keys, { start: k("c"), end: k("g") })!),
    "e",
  );
  // One hot row at the range's start cannot be split.
  equal(
    medianSplitKey([k("m"), k("m")], { start: k("m"), end: null }),
    undefined,
  );
  equal(medianSplitKey([], all), undefined);
  // A skewed sample splits where the load is, not at the middle of the keys.
  const skewed = [k("a"), ...Array.from({ length: 9 }, (_, i) => k(`y${i}`))];
  ok(dec.decode(medianSplitKey(skewed, all)!).startsWith("y"));
  // The meter keeps the most recent keys only.
  const m = new LoadMeter({ sampleSize: 4 });
  for (const s of ["a", "b", "c", "w", "x", "y", "z"]) m.write(k(s));
  equal(dec.decode(m.splitKey(all)!), "y");
});

Deno.test("the load meter keeps copies of the keys it samples: a caller reusing its bytes changes no split key", () => {
  const m = new LoadMeter({ sampleSize: 8 });
  const buf = new Uint8Array(1);
  for (const c of "abcdefgh") {
    buf[0] = c.charCodeAt(0);
    m.write(buf); // the same array each time, as a slab view may be
  }
  buf[0] = 0x7a;
  equal(dec.decode(m.splitKey(all)), "e");
});
