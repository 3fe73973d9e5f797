import assert from "node:assert/strict";
import fc from "fast-check";
import { compareBytes } from "./bytes.ts";
import { isLsmError } from "./lsm_error.ts";
import { LsmStore, type ScanOptions } from "./lsm_store.ts";

const LONG = Deno.env.get("STRATA_LONG") === "1";
const enc = new TextEncoder();
const dec = new TextDecoder();

type Op =
  | { op: "put"; k: string; v: string }
  | { op: "del"; k: string }
  | { op: "flush" }
  | { op: "compact" }
  | { op: "reopen" }
  | { op: "get"; k: string }
  | {
    op: "scan";
    start?: string;
    end?: string;
    prefix?: string;
    limit?: number;
  };

// A small alphabet so keys collide, share prefixes and overwrite each other.
const keyArb = fc.string({
  unit: fc.constantFrom("a", "b", "c", "\u00ff"),
  minLength: 0,
  maxLength: 4,
});
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      op: fc.constant("put" as const),
      k: keyArb,
      v: fc.string({ maxLength: 40 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant("del" as const), k: keyArb }),
  },
  { weight: 1, arbitrary: fc.constant({ op: "flush" as const }) },
  { weight: 1, arbitrary: fc.constant({ op: "compact" as const }) },
  { weight: 1, arbitrary: fc.constant({ op: "reopen" as const }) },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant("get" as const), k: keyArb }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("scan" as const),
      start: fc.option(keyArb, { nil: undefined }),
      end: fc.option(keyArb, { nil: undefined }),
      prefix: fc.option(keyArb, { nil: undefined }),
      limit: fc.option(fc.nat(6), { nil: undefined }),
    }, { requiredKeys: ["op"] }),
  },
);

// Keys travel as latin1 so each character is one byte and the model's order is byte order.
const bytesOf = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const strOf = (b: Uint8Array) => String.fromCharCode(...b);

function modelScan(
  model: Map<string, string>,
  o: Op & { op: "scan" },
): [string, string][] {
  let keys = [...model.keys()].sort((a, b) =>
    compareBytes(bytesOf(a), bytesOf(b))
  );
  if (o.start !== undefined) {
    keys = keys.filter((k) => compareBytes(bytesOf(k), bytesOf(o.start!)) >= 0);
  }
  if (o.end !== undefined) {
    keys = keys.filter((k) => compareBytes(bytesOf(k), bytesOf(o.end!)) < 0);
  }
  if (o.prefix !== undefined) {
    keys = keys.filter((k) => k.startsWith(o.prefix!));
  }
  return keys.slice(0, o.limit ?? Infinity).map((k) => [k, model.get(k)!]);
}

Deno.test("the store matches a Map under random puts, deletes, flushes, compactions and reopens (fast-check)", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { maxLength: 120 }), async (ops) => {
      const dir = await Deno.makeTempDir({ prefix: "strata-lsm-model-" });
      const opts = {
        sync: "never" as const,
        memtableBytes: 600,
        blockBytes: 64,
        compactionTrigger: 3,
        blockCacheBytes: 2048,
      };
      let db = await LsmStore.open(dir, opts);
      const model = new Map<string, string>();
      try {
        for (const o of ops) {
          switch (o.op) {
            case "put":
              await db.put(bytesOf(o.k), enc.encode(o.v));
              model.set(o.k, o.v);
              break;
            case "del":
              await db.delete(bytesOf(o.k));
              model.delete(o.k);
              break;
            case "flush":
              await db.flush();
              break;
            case "compact":
              await db.compact();
              assert.ok(db.stats().tables <= 1);
              break;
            case "reopen":
              await db.close();
              db = await LsmStore.open(dir, opts);
              break;
            case "get": {
              const v = await db.get(bytesOf(o.k));
              assert.equal(
                v === undefined ? undefined : dec.decode(v),
                model.get(o.k),
                `get ${o.k}`,
              );
              break;
            }
            case "scan": {
              const scan: ScanOptions = { limit: o.limit };
              if (o.start !== undefined) scan.start = bytesOf(o.start);
              if (o.end !== undefined) scan.end = bytesOf(o.end);
              if (o.prefix !== undefined) scan.prefix = bytesOf(o.prefix);
              if (
                o.start !== undefined && o.end !== undefined &&
                compareBytes(scan.start!, scan.end!) > 0
              ) {
                await assert.rejects(async () => {
                  for await (const _ of db.scan(scan)) { /* drain */ }
                }, (e) => isLsmError(e, "bad_argument"));
                break;
              }
              const got: [string, string][] = [];
              for await (const e of db.scan(scan)) {
                got.push([strOf(e.key), dec.decode(e.value)]);
              }
              assert.deepEqual(got, modelScan(model, o), JSON.stringify(o));
              // The same range through a gathering cursor (read at once;
              // only the memtable when no table covers the range).
              const c = db.cursor({ ...scan, gather: true });
              const viaCursor: [string, string][] = [];
              for (let e = c.next(); e !== undefined; e = c.next()) {
                if (e instanceof Promise) {
                  e = await e;
                  if (e === undefined) break;
                }
                viaCursor.push([strOf(e.key), dec.decode(e.value)]);
              }
              assert.deepEqual(viaCursor, got, `gather ${JSON.stringify(o)}`);
              break;
            }
          }
        }
        // Final state, after one more reopen: every key, and the full scan.
        await db.close();
        db = await LsmStore.open(dir, opts);
        const all: [string, string][] = [];
        for await (const e of db.scan()) {
          all.push([strOf(e.key), dec.decode(e.value)]);
        }
        assert.deepEqual(all, modelScan(model, { op: "scan" }));
      } finally {
        await db.close();
        await Deno.remove(dir, { recursive: true });
      }
    }),
    { numRuns: LONG ? 500 : 60 },
  );
});

Deno.test("compaction drops deleted and overwritten entries; unreferenced table files are removed", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const db = await LsmStore.open(dir, {
      sync: "never",
      compactionTrigger: 100,
    });
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 500; i++) {
        await db.put(enc.encode(`k${i}`), enc.encode(`r${round}`));
      }
      await db.flush();
    }
    for (let i = 0; i < 250; i++) await db.delete(enc.encode(`k${i}`));
    await db.flush();
    assert.equal(db.stats().tables, 5);
    await db.compact();
    assert.equal(db.stats().tables, 1);
    assert.equal(db.tables[0]!.entries, 250, "only the live keys remain");
    assert.equal(dec.decode((await db.get(enc.encode("k300")))!), "r3");
    assert.equal(await db.get(enc.encode("k10")), undefined);
    await db.close();
    const names = [...Deno.readDirSync(`${dir}/tables`)].map((e) => e.name)
      .filter((n) => n.endsWith(".sst"));
    assert.equal(names.length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a corrupt SSTable block surfaces as a clear corrupt error from get and scan", async () => {
  const dir = await Deno.makeTempDir();
  try {
    let db = await LsmStore.open(dir, { sync: "never", blockCacheBytes: 0 });
    for (let i = 0; i < 2000; i++) {
      await db.put(
        enc.encode(`k${String(i).padStart(5, "0")}`),
        new Uint8Array(100).fill(i),
      );
    }
    await db.flush();
    const name = db.tables[0]!.name;
    await db.close();
    const path = `${dir}/tables/${name}`;
    const bytes = await Deno.readFile(path);
    bytes[16 + 5000]! ^= 0xff;
    await Deno.writeFile(path, bytes);
    db = await LsmStore.open(dir, { sync: "never", blockCacheBytes: 0 });
    await assert.rejects(
      async () => {
        for await (const _ of db.scan()) { /* drain */ }
      },
      (e) =>
        isLsmError(e, "corrupt") && e.message.includes(name) &&
        /checksum mismatch/.test(e.message),
    );
    let errors = 0;
    for (let i = 0; i < 2000; i++) {
      await db.get(enc.encode(`k${String(i).padStart(5, "0")}`)).catch((e) => {
        assert.ok(isLsmError(e, "corrupt"));
        errors++;
      });
    }
    assert.ok(errors > 0);
    await db.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a memtable budget over 1 GiB (past what the memtable's arena can address) is refused on open", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(LsmStore.open(dir, { memtableBytes: 2 ** 30 + 1 }));
    const db = await LsmStore.open(dir, { memtableBytes: 2 ** 30 });
    await db.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bad keys, values and scan ranges are refused with bad_argument", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const db = await LsmStore.open(dir, { sync: "never" });
    await assert.rejects(
      db.put("x" as unknown as Uint8Array, new Uint8Array(1)),
      (e) => isLsmError(e, "bad_argument"),
    );
    await assert.rejects(
      db.put(new Uint8Array(1), 5 as unknown as Uint8Array),
      (e) => isLsmError(e, "bad_argument"),
    );
    await assert.rejects(async () => {
      for await (const _ of db.scan({ limit: -1 })) { /* drain */ }
    }, (e) => isLsmError(e, "bad_argument"));
    await db.close();
    await assert.rejects(
      db.get(new Uint8Array(1)),
      (e) => isLsmError(e, "closed"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a scan and gets running across a compaction see every key; retired files go when the scan ends", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const db = await LsmStore.open(dir, {
      sync: "never",
      blockCacheBytes: 0,
      compactionTrigger: 100,
      blockBytes: 256,
    });
    const key = (i: number) => enc.encode(`k${String(i).padStart(5, "0")}`);
    for (let round = 0; round < 3; round++) {
      for (let i = round; i < 3000; i += 3) {
        await db.put(key(i), enc.encode(`v${i}`));
      }
      await db.flush();
    }
    assert.equal(db.stats().tables, 3);
    const seen: string[] = [];
    let compacted = false;
    const sstFiles = () =>
      [...Deno.readDirSync(`${dir}/tables`)].filter((e) =>
        e.name.endsWith(".sst")
      ).length;
    for await (const e of db.scan()) {
      seen.push(dec.decode(e.value));
      if (seen.length === 1000) {
        // Compaction runs to the end while this scan holds the old tables.
        await db.compact();
        compacted = true;
        assert.equal(db.stats().tables, 1);
        assert.equal(sstFiles(), 4, "old files stay while the scan reads them");
        for (let i = 0; i < 3000; i += 7) {
          assert.equal(dec.decode((await db.get(key(i)))!), `v${i}`);
        }
      }
    }
    assert.ok(compacted);
    assert.deepEqual(seen, Array.from({ length: 3000 }, (_, i) => `v${i}`));
    // The deletes run in the background once the last reader lets go.
    const deadline = performance.now() + 5000;
    while (sstFiles() > 1 && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(sstFiles(), 1, "retired files are deleted after the scan");
    await db.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a compaction filter drops the entries it rejects and sees every live entry in key order", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-lsm-filter-" });
  const seen: string[] = [];
  let compactions = 0;
  const db = await LsmStore.open(dir, {
    compactionTrigger: 100,
    compactionFilter: () => {
      compactions++;
      return (key, value) => {
        seen.push(dec.decode(key));
        // Drops keys whose value says so.
        return dec.decode(value) !== "drop";
      };
    },
  });
  try {
    await db.put(enc.encode("b"), enc.encode("drop"));
    await db.put(enc.encode("a"), enc.encode("keep"));
    await db.flush();
    await db.put(enc.encode("c"), enc.encode("keep"));
    await db.delete(enc.encode("a"));
    await db.flush();
    // Not part of the compaction: the memtable.
    await db.put(enc.encode("d"), enc.encode("drop"));
    await db.compact();
    assert.equal(compactions, 1);
    // The deleted "a" never reaches the filter; "d" stays in the memtable.
    assert.deepEqual(seen, ["b", "c"]);
    const keys = [];
    for await (const e of db.scan()) keys.push(dec.decode(e.key));
    assert.deepEqual(keys, ["c", "d"]);
    assert.equal(db.stats().tables, 1);
    // With a filter, even a single table is rewritten by compact().
    await db.flush();
    await db.compact();
    assert.equal(db.stats().tables, 1);
    await db.compact();
    assert.equal(compactions, 3);
    assert.deepEqual(seen.slice(2), ["c", "d", "c"]);
    keys.length = 0;
    for await (const e of db.scan()) keys.push(dec.decode(e.key));
    assert.deepEqual(keys, ["c"]);
  } finally {
    await db.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the store keeps its own copies: changing a written or a returned buffer changes nothing stored", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-lsm-copies-" });
  const db = await LsmStore.open(dir, { sync: "never" });
  try {
    const k = enc.encode("key1");
    const v = enc.encode("value");
    const put = db.put(k, v);
    k[0] = 0x7a;
    v[0] = 0x7a;
    await put;
    await db.put(enc.encode("key2"), enc.encode("other"));
    for (const phase of ["memtable", "table"]) {
      const got = await db.get(enc.encode("key1"));
      assert.equal(dec.decode(got!), "value", phase);
      got!.fill(0);
      for await (const e of db.scan()) {
        e.key.fill(0);
        e.value.fill(0);
      }
      const all = [];
      for await (const e of db.scan()) {
        all.push(`${dec.decode(e.key)}=${dec.decode(e.value)}`);
      }
      assert.deepEqual(all, ["key1=value", "key2=other"], phase);
      await db.flush();
    }
  } finally {
    await db.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a cursor reads a range as scan does, skips tables outside it, and closing early releases the tables; onFlush and onReplay see the entries", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const replayed: string[] = [];
    const open = () =>
      LsmStore.open(dir, {
        sync: "never",
        blockCacheBytes: 0,
        blockBytes: 256,
        compactionTrigger: 100,
        onFlush: () => [{ key: enc.encode("!mark"), value: enc.encode("m") }],
        onReplay: (k, v) =>
          replayed.push(`${dec.decode(k)}=${v === null ? "-" : dec.decode(v)}`),
      });
    let db = await open();
    const key = (i: number) => enc.encode(`k${String(i).padStart(4, "0")}`);
    for (let i = 0; i < 400; i++) await db.put(key(i), enc.encode(`v${i}`));
    await db.flush(); // table 1: k0000..k0399 and the flush's "!mark"
    for (let i = 400; i < 800; i++) await db.put(key(i), enc.encode(`v${i}`));
    await db.delete(key(5));
    await db.flush(); // table 2: k0400..k0799, k0005's tombstone, "!mark"
    await db.put(key(900), enc.encode("v900"));
    await db.delete(key(6));
    assert.equal(dec.decode((await db.get(enc.encode("!mark")))!), "m");
    const read = async (c: ReturnType<LsmStore["cursor"]>) => {
      const out: string[] = [];
      while (true) {
        let e = c.next();
        if (e instanceof Promise) e = await e;
        if (e === undefined) return out;
        out.push(dec.decode(e.key));
      }
    };
    for (const gather of [false, true]) {
      const opts = { start: key(3), end: key(9), gather };
      const viaScan: string[] = [];
      for await (const e of db.scan(opts)) viaScan.push(dec.decode(e.key));
      assert.deepEqual(await read(db.cursor(opts)), viaScan);
      assert.deepEqual(viaScan, ["k0003", "k0004", "k0007", "k0008"]);
    }
    // Both tables end below "k09": neither is read (no block lookups).
    const misses = db.stats().cacheMisses;
    assert.deepEqual(await read(db.cursor({ prefix: enc.encode("k09") })), [
      "k0900",
    ]);
    assert.equal(db.stats().cacheMisses, misses);
    // A cursor stopped early and closed holds no table: after a compaction
    // only its output file is left.
    const c = db.cursor({ start: key(0) });
    let e = c.next();
    if (e instanceof Promise) e = await e;
    assert.equal(dec.decode(e!.key), "k0000");
    c.close();
    assert.equal(c.next(), undefined);
    await db.compact();
    const deadline = performance.now() + 5000;
    const sst = () =>
      [...Deno.readDirSync(`${dir}/tables`)].filter((f) =>
        f.name.endsWith(".sst")
      ).length;
    while (sst() > 1 && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(sst(), 1);
    await db.close();
    db = await open();
    assert.deepEqual(replayed, ["k0900=v900", "k0006=-"]);
    await db.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a cursor over a range only the memtable holds (gathered or walked) skips tombstones, keeps the bounds and the limit, and answers alike once tables cover it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-lsm-gather-" });
  try {
    const db = await LsmStore.open(dir, { sync: "never" });
    let gather = true;
    const read = async (opts: ScanOptions) => {
      const c = db.cursor({ ...opts, gather });
      const out: string[] = [];
      for (let e = c.next(); e !== undefined; e = c.next()) {
        if (e instanceof Promise) {
          e = await e;
          if (e === undefined) break;
        }
        out.push(`${dec.decode(e.key)}=${dec.decode(e.value)}`);
      }
      return out;
    };
    for (const k of ["a", "r1", "r1x", "r2", "r3", "s"]) {
      await db.put(enc.encode(k), enc.encode(k.toUpperCase()));
    }
    await db.delete(enc.encode("r2"));
    const want = ["r1=R1", "r1x=R1X", "r3=R3"];
    for (gather of [true, false]) {
      assert.deepEqual(await read({ prefix: enc.encode("r") }), want);
      assert.deepEqual(
        await read({ start: enc.encode("r1"), end: enc.encode("r3") }),
        want.slice(0, 2),
      );
      assert.deepEqual(await read({ prefix: enc.encode("r"), limit: 2 }), [
        "r1=R1",
        "r1x=R1X",
      ]);
    }
    gather = false;
    assert.deepEqual(await read({ start: enc.encode("r3") }), [
      "r3=R3",
      "s=S",
    ]);
    // Now a table holds "r1": the merge path, the same answers.
    await db.flush();
    await db.put(enc.encode("r1"), enc.encode("new"));
    for (gather of [true, false]) {
      assert.deepEqual(await read({ prefix: enc.encode("r") }), [
        "r1=new",
        ...want.slice(1),
      ]);
    }
    await db.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cursors and scans opened before overwrites, deletes, new keys and a flush that freezes their memtable answer as of their start", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-lsm-snapshot-" });
  try {
    const db = await LsmStore.open(dir, { sync: "never" });
    const k = (i: number) => enc.encode(`k${String(i).padStart(4, "0")}`);
    for (let i = 0; i < 300; i++) await db.put(k(i), enc.encode(`v${i}`));
    await db.delete(k(7));
    const want = Array.from({ length: 300 }, (_, i) => i)
      .filter((i) => i !== 7)
      .map((i) => `k${String(i).padStart(4, "0")}=v${i}`);
    // A walked cursor (memtable alone), a scan (the async generator) and a
    // cursor that merges (a table covers its range after the first flush).
    const walked = db.cursor({ start: k(0) });
    const scanned = db.scan({ start: k(0) });
    const firstScanned = await scanned.next();
    const got = (e: { key: Uint8Array; value: Uint8Array }) =>
      `${dec.decode(e.key)}=${dec.decode(e.value)}`;
    const drain = async (c: ReturnType<LsmStore["cursor"]>, n = Infinity) => {
      const out: string[] = [];
      while (out.length < n) {
        let e = c.next();
        if (e instanceof Promise) e = await e;
        if (e === undefined) break;
        out.push(got(e));
      }
      return out;
    };
    const walkedHead = await drain(walked, 10);
    // Writes go on: overwrites (some ahead of the cursors, some behind),
    // deletes, keys between existing ones, then a flush: the memtable the
    // cursors read is frozen, written to a table and replaced.
    for (let i = 0; i < 300; i += 3) await db.put(k(i), enc.encode("new"));
    for (let i = 1; i < 300; i += 10) await db.delete(k(i));
    for (let i = 0; i < 300; i += 7) {
      await db.put(
        enc.encode(`k${String(i).padStart(4, "0")}x`),
        enc.encode("x"),
      );
    }
    await db.flush();
    const merged = db.cursor({ start: k(0) });
    for (let i = 0; i < 300; i += 5) await db.put(k(i), enc.encode("newer"));
    await db.flush();
    await db.put(k(8), enc.encode("newest"));
    assert.deepEqual([...walkedHead, ...await drain(walked)], want);
    const rest: string[] = [got(firstScanned.value!)];
    for await (const e of scanned) rest.push(got(e));
    assert.deepEqual(rest, want);
    // The merging cursor sees the state after the first flush.
    const after = new Map<number, string>();
    for (let i = 0; i < 300; i++) {
      if (i === 7) continue;
      after.set(i, i % 3 === 0 ? "new" : `v${i}`);
    }
    for (let i = 1; i < 300; i += 10) after.delete(i);
    const wantMerged: string[] = [];
    for (let i = 0; i < 300; i++) {
      const id = `k${String(i).padStart(4, "0")}`;
      if (after.has(i)) wantMerged.push(`${id}=${after.get(i)}`);
      if (i % 7 === 0) wantMerged.push(`${id}x=x`);
    }
    assert.deepEqual(await drain(merged), wantMerged);
    await db.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
