import assert from "node:assert/strict";
import fc from "fast-check";
import { compareBytes } from "./bytes.ts";
import { Memtable, type Value } from "./memtable.ts";

const byteArb = fc.constantFrom(0, 1, 0x7f, 0x80, 0xfe, 0xff, 0x41);
const keyArb = fc.oneof(
  { weight: 9, arbitrary: fc.uint8Array({ maxLength: 6 }) },
  {
    weight: 9,
    arbitrary: fc.array(byteArb, { maxLength: 6 }).map((a) =>
      Uint8Array.from(a)
    ),
  },
  // Longer than keyString's 8192-byte chunks.
  {
    weight: 1,
    arbitrary: fc.tuple(fc.integer({ min: 8190, max: 16500 }), byteArb).map((
      [n, b],
    ) => new Uint8Array(n).fill(b)),
  },
);

Deno.test("the memtable orders, finds and ranges keys byte-wise, as compareBytes does (fast-check)", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(keyArb, fc.boolean()), { maxLength: 60 }),
      keyArb,
      keyArb,
      (writes, a, b) => {
        const mem = new Memtable();
        const model = new Map<string, { key: Uint8Array; del: boolean }>();
        writes.forEach(([k, del], i) => {
          mem.set(k, del ? null : Uint8Array.of(i));
          model.set(k.join(","), { key: k, del });
        });
        const sorted = [...model.values()].sort((x, y) =>
          compareBytes(x.key, y.key)
        );
        assert.deepEqual(
          [...mem.entries()].map((e) => e.key),
          sorted.map((e) => e.key),
        );
        for (const { key, del } of sorted) {
          const v = mem.get(key);
          assert.ok(del ? v === null : v instanceof Uint8Array);
        }
        assert.equal(mem.size, sorted.length);
        const [lo, hi] = compareBytes(a, b) <= 0 ? [a, b] : [b, a];
        assert.deepEqual(
          mem.range(lo, hi).map((e) => e.key),
          sorted.filter((e) =>
            compareBytes(e.key, lo) >= 0 && compareBytes(e.key, hi) < 0
          ).map((e) => e.key),
        );
        assert.deepEqual(
          [...mem.entries(lo)].map((e) => e.key),
          sorted.filter((e) => compareBytes(e.key, lo) >= 0).map((e) => e.key),
        );
      },
    ),
    { numRuns: 300 },
  );
});

/** The model's live view: key → value (null = tombstone), read as sorted entries from `start`. */
function modelFrom(
  model: Map<string, { key: Uint8Array; value: Uint8Array | null }>,
  start: Uint8Array | undefined,
): { key: Uint8Array; value: Uint8Array | null }[] {
  return [...model.values()]
    .filter((e) => start === undefined || compareBytes(e.key, start) >= 0)
    .sort((x, y) => compareBytes(x.key, y.key))
    .map((e) => ({ key: e.key.slice(), value: e.value?.slice() ?? null }));
}

const valueArb = fc.oneof(
  { weight: 6, arbitrary: fc.uint8Array({ maxLength: 40 }) },
  // Across the first chunks' quarter (nodes of their own) and whole chunks.
  {
    weight: 2,
    arbitrary: fc.tuple(fc.integer({ min: 3000, max: 70_000 }), byteArb)
      .map(([n, b]) => new Uint8Array(n).fill(b)),
  },
  { weight: 2, arbitrary: fc.constant(null) },
);

Deno.test("iterators opened between writes keep the entries as of their start while overwrites, deletes and new keys go on; values across chunk sizes stay exact (fast-check)", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          {
            weight: 6,
            arbitrary: fc.record({
              op: fc.constant("set" as const),
              key: keyArb,
              value: valueArb,
            }),
          },
          {
            weight: 1,
            arbitrary: fc.record({
              op: fc.constant("open" as const),
              start: fc.option(keyArb, { nil: undefined }),
              way: fc.constantFrom("walk", "cursor", "entries"),
            }),
          },
          {
            weight: 2,
            arbitrary: fc.record({
              op: fc.constant("step" as const),
              n: fc.integer({ min: 1, max: 4 }),
            }),
          },
        ),
        { maxLength: 80 },
      ),
      (ops) => {
        const mem = new Memtable();
        const model = new Map<
          string,
          { key: Uint8Array; value: Uint8Array | null }
        >();
        const open: {
          next: () => { key: Uint8Array; value: Uint8Array | null } | undefined;
          want: { key: Uint8Array; value: Uint8Array | null }[];
          got: { key: Uint8Array; value: Uint8Array | null }[];
        }[] = [];
        let bytes = 0;
        for (const o of ops) {
          if (o.op === "set") {
            // The memtable copies: a later change of the caller's bytes is not seen.
            const v = o.value?.slice() ?? null;
            mem.set(o.key, v);
            v?.fill(0x5a);
            model.set(o.key.join(","), { key: o.key, value: o.value });
            assert.ok(mem.bytes > bytes, "every write is counted");
            bytes = mem.bytes;
          } else if (o.op === "open") {
            let next: () =>
              | { key: Uint8Array; value: Uint8Array | null }
              | undefined;
            if (o.way === "walk") {
              const w = mem.walk(o.start);
              next = () => w.next();
            } else if (o.way === "cursor") {
              const c = mem.cursor(o.start);
              next = () => {
                const r = c.next();
                return r.done ? undefined : r.value;
              };
            } else {
              const g = mem.entries(o.start);
              next = () => {
                const r = g.next();
                return r.done ? undefined : r.value;
              };
            }
            open.push({ next, want: modelFrom(model, o.start), got: [] });
          } else {
            for (const it of open) {
              for (let i = 0; i < o.n; i++) {
                const e = it.next();
                if (e === undefined) break;
                it.got.push({
                  key: e.key.slice(),
                  value: e.value?.slice() ?? null,
                });
              }
            }
          }
        }
        for (const it of open) {
          for (let e = it.next(); e !== undefined; e = it.next()) {
            it.got.push({
              key: e.key.slice(),
              value: e.value?.slice() ?? null,
            });
          }
          assert.deepEqual(it.got, it.want);
        }
        assert.deepEqual(
          [...mem.entries()].map((e) => ({
            key: e.key.slice(),
            value: e.value?.slice() ?? null,
          })),
          modelFrom(model, undefined),
        );
        for (const { key, value } of model.values()) {
          assert.deepEqual(mem.get(key)?.slice() ?? mem.get(key), value);
        }
        assert.equal(mem.size, model.size);
      },
    ),
    { numRuns: 150 },
  );
});

Deno.test("values from empty to larger than the biggest chunk, in rising and falling key order, read back exactly", () => {
  const mem = new Memtable();
  const sizes = [0, 1, 7, 100, 4095, 4096, 4097, 9000, 70_000, 300_000];
  const want = new Map<string, Uint8Array | null>();
  const key = (i: number) =>
    new TextEncoder().encode(`k${String(i).padStart(6, "0")}`);
  let n = 0;
  // About 12 MiB: the chunks grow to their largest size and past it.
  for (let round = 0; round < 40; round++) {
    for (const s of sizes) {
      const v = new Uint8Array(s);
      for (let j = 0; j < s; j += 997) v[j] = (n + j) & 0xff;
      const i = round % 2 === 0 ? n : 1_000_000 - n;
      mem.set(key(i), v);
      want.set(`k${String(i).padStart(6, "0")}`, v);
      n++;
    }
  }
  for (const big of [2 * 2 ** 20, 5 * 2 ** 20]) {
    const v = new Uint8Array(big).fill(big >> 20);
    mem.set(key(n), v);
    want.set(`k${String(n).padStart(6, "0")}`, v);
    n++;
  }
  // Overwrites and deletes in front of large older versions.
  mem.set(key(0), null);
  want.set("k000000", null);
  mem.set(key(1), Uint8Array.of(9));
  want.set("k000001", Uint8Array.of(9));
  assert.equal(mem.size, want.size);
  const keys = [...want.keys()].sort();
  const dec = new TextDecoder();
  const seen = [...mem.entries()];
  assert.deepEqual(seen.map((e) => dec.decode(e.key)), keys);
  for (const e of seen) {
    const w = want.get(dec.decode(e.key))!;
    assert.ok(w === null ? e.value === null : compareBytes(e.value!, w) === 0);
  }
  for (const [k, w] of want) {
    const v = mem.get(new TextEncoder().encode(k));
    assert.ok(w === null ? v === null : compareBytes(v!, w) === 0, k);
  }
  assert.ok(mem.bytes > 12 * 2 ** 20);
});

Deno.test("thousands of mid-size values (each over a quarter of the first chunks) fit: chunks grow instead of one per node", () => {
  const mem = new Memtable();
  const v = new Uint8Array(10_000).fill(7);
  for (let i = 0; i < 6000; i++) {
    mem.set(Uint8Array.of(i >> 8, i & 0xff), v);
  }
  assert.equal(mem.size, 6000);
  assert.equal(mem.get(Uint8Array.of(23, 111))?.length, 10_000);
  assert.ok(mem.bytes >= 6000 * 10_000);
});

Deno.test("after many searches without a write (its sorted index built) and after a write that drops it, seeks, gets and ranges match a sorted model (fast-check)", () => {
  // Keys share a prefix of random length and differ in few bytes, so the
  // index's 6-byte heads tie often and keys end inside them.
  const tail = fc.array(fc.constantFrom(0, 1, 0x30, 0x31, 0xff), {
    maxLength: 10,
  });
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 12 }),
      fc.integer({ min: 4096, max: 6000 }),
      fc.integer(),
      fc.array(tail, { minLength: 20, maxLength: 40 }),
      // 1: no key is the bare prefix, so the keys' common prefix is known
      // only from the first and the last of them.
      fc.integer({ min: 0, max: 1 }),
      (prefixLen, nodes, seed, probes, minTail) => {
        const prefix = new Uint8Array(prefixLen).fill(0x72);
        let r = seed >>> 0 || 1;
        const rand = (n: number) => {
          r ^= r << 13;
          r ^= r >>> 17;
          r ^= r << 5;
          return (r >>> 0) % n;
        };
        const mem = new Memtable();
        const model = new Map<string, { key: Uint8Array; value: Value }>();
        const put = (i: number) => {
          const t = Array.from(
            { length: minTail + rand(9 - minTail) },
            () => [0, 1, 0x30, 0x31, 0xff][rand(5)]!,
          );
          const key = Uint8Array.from([...prefix, ...t]);
          const value = rand(8) === 0 ? null : Uint8Array.of(i & 0xff, i >> 8);
          mem.set(key, value);
          model.set(key.join(","), { key, value });
        };
        for (let i = 0; i < nodes; i++) put(i);
        const keys = probes.map((t) => Uint8Array.from([...prefix, ...t]));
        keys.push(new Uint8Array(0), prefix.subarray(0, prefixLen >> 1));
        keys.push(Uint8Array.of(0x73), Uint8Array.of(0x71, 0xff));
        const check = () => {
          const sorted = modelFrom(model, undefined);
          for (const k of keys) {
            const from = sorted.filter((e) => compareBytes(e.key, k) >= 0);
            const w = mem.walk(k);
            for (const want of from.slice(0, 3)) {
              const got = w.next();
              assert.ok(got !== undefined);
              assert.deepEqual(got.key, want.key);
              assert.deepEqual(got.value, want.value);
            }
            if (from.length <= 3) assert.equal(w.next(), undefined);
            const hit = model.get(k.join(","));
            assert.deepEqual(
              mem.get(k),
              hit === undefined ? undefined : hit.value,
            );
          }
        };
        // The first searches go through the links; the index is built
        // after an eighth of the nodes' count of them.
        for (let i = 0; i < (nodes >> 3) + 1; i++) {
          mem.get(keys[i % keys.length]!);
        }
        check();
        check();
        put(nodes);
        check();
      },
    ),
    { numRuns: 25 },
  );
});
