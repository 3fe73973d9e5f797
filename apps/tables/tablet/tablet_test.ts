import assert from "node:assert/strict";
import { isTabletError, type TabletErrorCode } from "./tablet_error.ts";
import { openTablet } from "./tablet.ts";
import { openTabletFrom } from "./split.ts";
import type { KeyRange, Row, TableSchema, Tablet } from "./types.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const b = (s: string) => enc.encode(s);
const ALL: KeyRange = { start: new Uint8Array(0), end: null };
const SCHEMA: TableSchema = {
  name: "webtable",
  families: [
    { name: "contents", maxVersions: 3 },
    { name: "anchor" },
    { name: "tmp", maxVersions: 10, ttlMs: 1000 },
  ],
};

/** A tablet in a temp dir with a hand-driven wall clock. */
async function withTablet(
  fn: (
    t: Tablet,
    ctl: { now: number; reopen(): Promise<Tablet> },
  ) => Promise<void>,
  range: KeyRange = ALL,
  schema: TableSchema = SCHEMA,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "strata-tablet-" });
  const ctl = {
    now: 1_000_000,
    reopen: async () => {
      await t.close();
      t = await openTablet(dir, schema, range, { clock: () => ctl.now });
      return t;
    },
  };
  let t = await openTablet(dir, schema, range, { clock: () => ctl.now });
  try {
    await fn(t, ctl);
  } finally {
    await t.close();
    await Deno.remove(dir, { recursive: true });
  }
}

function show(r: Row | undefined): string[] {
  if (r === undefined) return [];
  return r.cells.map((c) =>
    `${c.family}:${dec.decode(c.qualifier)}@${c.timestamp}=${
      dec.decode(c.value)
    }`
  );
}

async function rejects(p: Promise<unknown>, code: TabletErrorCode) {
  await assert.rejects(p, (e) => isTabletError(e, code));
}

Deno.test("a row mutation is read back with cells sorted by family, qualifier and newest timestamp", async () => {
  await withTablet(async (t, ctl) => {
    const r = b("com.cnn.www");
    const w1 = await t.mutateRow(r, [
      { op: "put", family: "contents", qualifier: b("html"), value: b("v1") },
      {
        op: "put",
        family: "anchor",
        qualifier: b("cnnsi.com"),
        value: b("CNN"),
      },
    ]);
    ctl.now += 10;
    const w2 = await t.mutateRow(r, [
      { op: "put", family: "contents", qualifier: b("html"), value: b("v2") },
    ]);
    assert.ok(w2.timestamp > w1.timestamp);
    assert.deepEqual(show(await t.getRow(r)), [
      `anchor:cnnsi.com@${w1.timestamp}=CNN`,
      `contents:html@${w2.timestamp}=v2`,
      `contents:html@${w1.timestamp}=v1`,
    ]);
    assert.deepEqual(show(await t.getRow(r, { versions: 1 })), [
      `anchor:cnnsi.com@${w1.timestamp}=CNN`,
      `contents:html@${w2.timestamp}=v2`,
    ]);
    assert.deepEqual(show(await t.getRow(r, { asOf: w1.timestamp })), [
      `anchor:cnnsi.com@${w1.timestamp}=CNN`,
      `contents:html@${w1.timestamp}=v1`,
    ]);
    assert.deepEqual(
      show(await t.getRow(r, { columns: [{ family: "anchor" }] })),
      [`anchor:cnnsi.com@${w1.timestamp}=CNN`],
    );
    assert.equal(await t.getRow(b("com.cnn")), undefined);
  });
});

Deno.test("timestamps rise strictly, even within one millisecond and when the wall clock steps back", async () => {
  await withTablet(async (t, ctl) => {
    const ts: number[] = [];
    const m = [{
      op: "put" as const,
      family: "anchor",
      qualifier: b("q"),
      value: b("x"),
    }];
    for (let i = 0; i < 5; i++) {
      ts.push((await t.mutateRow(b("r"), m)).timestamp);
    }
    ctl.now -= 60_000;
    ts.push((await t.mutateRow(b("r"), m)).timestamp);
    t = await ctl.reopen();
    ts.push((await t.mutateRow(b("r"), m)).timestamp);
    for (let i = 1; i < ts.length; i++) assert.ok(ts[i]! > ts[i - 1]!, `${ts}`);
    assert.equal(ts[0], 1_000_000);
    // The clock resumes exactly after the last timestamp given, whether
    // that write is replayed from the log (a cell, a deletion marker) or
    // was flushed to a table (the log then empty) and compacted.
    const next = async (f: () => Promise<void>) => {
      await f();
      const last = ts[ts.length - 1]!;
      ctl.now -= 60_000;
      t = await ctl.reopen();
      ts.push((await t.mutateRow(b("r"), m)).timestamp);
      assert.equal(ts[ts.length - 1], last + 1, `${ts}`);
    };
    await next(async () => {});
    await next(async () => {
      ts.push((await t.mutateRow(b("s"), [{ op: "deleteRow" }])).timestamp);
    });
    await next(() => t.flush());
    await next(() => t.compact());
  });
});

Deno.test("3,000 mutations a second on distinct rows keep the wall clock's time, so a read as of a later wall time sees every one", async () => {
  await withTablet(async (t, ctl) => {
    const put = (v: string) => [{
      op: "put" as const,
      family: "contents",
      qualifier: b("q"),
      value: b(v),
    }];
    // Three rows a millisecond. Before, the tablet's clock took +1 ms per
    // mutation: the 3,000th write was stamped 2 s ahead of the wall clock,
    // and a read as of the wall clock missed two thirds of them.
    const start = ctl.now;
    let ahead = 0;
    for (let i = 0; i < 3_000; i++) {
      if (i % 3 === 0) ctl.now++;
      const { timestamp } = await t.mutateRow(b(`r${i}`), put("a"));
      assert.ok(timestamp >= ctl.now);
      ahead = Math.max(ahead, timestamp - ctl.now);
    }
    // Only two rows sharing a slot of the clock within one millisecond
    // put a timestamp ahead, by a millisecond each.
    assert.ok(ahead <= 3, `ran ahead by ${ahead} ms`);
    ctl.now += 5;
    assert.equal(ctl.now, start + 1_005);
    let rows = 0;
    for await (const _ of t.scan({ asOf: ctl.now })) rows++;
    assert.equal(rows, 3_000);
    // One row's writes in one millisecond still rise, each its own
    // version, and a deletion hides exactly what came before it.
    const w0 = await t.mutateRow(b("r7"), put("b"));
    const w1 = await t.mutateRow(b("r7"), put("c"));
    const w2 = await t.mutateRow(b("r7"), put("d"));
    assert.deepEqual(
      [w0.timestamp, w1.timestamp, w2.timestamp],
      [ctl.now, ctl.now + 1, ctl.now + 2],
    );
    assert.deepEqual(show(await t.getRow(b("r7"))), [
      `contents:q@${ctl.now + 2}=d`,
      `contents:q@${ctl.now + 1}=c`,
      `contents:q@${ctl.now}=b`,
    ]);
    const d = await t.mutateRow(b("r8"), [{ op: "deleteRow" }]);
    const w3 = await t.mutateRow(b("r8"), put("d"));
    assert.ok(d.timestamp > ctl.now && w3.timestamp > d.timestamp);
    assert.deepEqual(show(await t.getRow(b("r8"))), [
      `contents:q@${w3.timestamp}=d`,
    ]);
    // The hot row dragged the tablet: no later write goes below it.
    const other = await t.mutateRow(b("r9"), put("e"));
    assert.ok(other.timestamp >= w3.timestamp);
  });
});

Deno.test("maxVersions keeps the newest versions and a deleted version keeps its slot, before and after compaction", async () => {
  await withTablet(async (t) => {
    const put = (v: string, timestamp: number) =>
      t.mutateRow(b("r"), [{
        op: "put",
        family: "contents",
        qualifier: b("q"),
        value: b(v),
        timestamp,
      }]);
    for (let i = 1; i <= 5; i++) await put(`v${i}`, i * 10);
    const versions = async () =>
      (await t.getRow(b("r")))?.cells.map((c) => dec.decode(c.value)) ?? [];
    assert.deepEqual(await versions(), ["v5", "v4", "v3"]);
    await t.mutateRow(b("r"), [{
      op: "deleteCells",
      family: "contents",
      qualifier: b("q"),
      timestamp: 50,
    }]);
    // v2 does not come back: the deleted v5 still holds one of the 3 slots.
    assert.deepEqual(await versions(), ["v4", "v3"]);
    await t.compact();
    assert.deepEqual(await versions(), ["v4", "v3"]);
    await put("v1-again", 10);
    assert.deepEqual(await versions(), ["v4", "v3"]);
    // v6 takes a slot: the newest three are v6, the deleted v5 and v4.
    await put("v6", 60);
    assert.deepEqual(await versions(), ["v6", "v4"]);
  });
});

Deno.test("deleteRow, deleteFamily and deleteCells hide what was written before them, not what comes after", async () => {
  await withTablet(async (t, ctl) => {
    const r = b("row");
    const put = (family: string, q: string, v: string, timestamp?: number) =>
      ({
        op: "put",
        family,
        qualifier: b(q),
        value: b(v),
        timestamp,
      }) as const;
    await t.mutateRow(r, [
      put("anchor", "a", "1"),
      put("anchor", "b", "1"),
      put("contents", "c", "1"),
    ]);
    ctl.now += 1;
    await t.mutateRow(r, [{
      op: "deleteCells",
      family: "anchor",
      qualifier: b("a"),
    }]);
    assert.deepEqual(
      show(await t.getRow(r)).map((s) => s.split("@")[0]),
      ["anchor:b", "contents:c"],
    );
    await t.mutateRow(r, [{ op: "deleteFamily", family: "anchor" }]);
    assert.deepEqual(
      show(await t.getRow(r)).map((s) => s.split("@")[0]),
      ["contents:c"],
    );
    // An explicit old timestamp written after the delete is visible (Bigtable semantics).
    await t.mutateRow(r, [put("anchor", "a", "old", 5)]);
    assert.deepEqual(
      show(await t.getRow(r, { columns: [{ family: "anchor" }] })),
      [
        "anchor:a@5=old",
      ],
    );
    // Within one mutation, order counts: put then deleteRow deletes the put;
    // deleteRow then put keeps it.
    const { timestamp } = await t.mutateRow(r, [
      put("contents", "x", "gone"),
      { op: "deleteRow" },
      put("contents", "y", "kept"),
    ]);
    assert.deepEqual(show(await t.getRow(r)), [`contents:y@${timestamp}=kept`]);
    // A delete at T hides timestamps <= T only: a future cell written
    // before it in the same mutation stays.
    await t.mutateRow(r, [
      put("anchor", "future", "stays", 5_000_000),
      { op: "deleteRow" },
    ]);
    assert.deepEqual(show(await t.getRow(r)), ["anchor:future@5000000=stays"]);
    const { timestamp: timestamp2 } = await t.mutateRow(r, [{
      op: "deleteCells",
      family: "anchor",
      qualifier: b("future"),
      timestamp: 5_000_000,
    }, put("contents", "y", "kept")]);
    assert.deepEqual(show(await t.getRow(r)), [
      `contents:y@${timestamp2}=kept`,
    ]);
    await t.compact();
    assert.deepEqual(show(await t.getRow(r)), [
      `contents:y@${timestamp2}=kept`,
    ]);
    t = await ctl.reopen();
    assert.deepEqual(show(await t.getRow(r)), [
      `contents:y@${timestamp2}=kept`,
    ]);
  });
});

Deno.test("a family's TTL hides expired cells at once and compaction drops them", async () => {
  await withTablet(async (t, ctl) => {
    await t.mutateRow(b("r"), [
      { op: "put", family: "tmp", qualifier: b("q"), value: b("short") },
      { op: "put", family: "anchor", qualifier: b("q"), value: b("long") },
    ]);
    assert.equal((await t.getRow(b("r")))?.cells.length, 2);
    ctl.now += 999;
    assert.equal((await t.getRow(b("r")))?.cells.length, 2);
    ctl.now += 1;
    assert.deepEqual(
      (await t.getRow(b("r")))?.cells.map((c) => c.family),
      ["anchor"],
    );
    await t.compact();
    assert.deepEqual(
      (await t.getRow(b("r")))?.cells.map((c) => c.family),
      ["anchor"],
    );
  });
});

Deno.test("a major compaction drops surplus versions, deleted rows and expired cells from disk", async () => {
  await withTablet(async (t, ctl) => {
    const value = new Uint8Array(1000).fill(1);
    for (let i = 0; i < 100; i++) {
      await t.mutateRow(b(`r${i % 10}`), [
        { op: "put", family: "anchor", qualifier: b("q"), value },
        { op: "put", family: "tmp", qualifier: b(`q${i}`), value },
      ]);
    }
    await t.mutateRow(b("r0"), [{ op: "deleteRow" }]);
    await t.flush();
    // The flush already left out the 90 overwritten "anchor" versions
    // (flush_gc.ts); the 100 "tmp" cells and r0's deleted row remain.
    const before = t.approximateBytes();
    assert.ok(before > 100_000 && before < 150_000, `${before}`);
    ctl.now += 2000; // every "tmp" cell expires (TTL 1 s)
    await t.compact();
    // 9 rows with one 1 kB version each are left.
    const after = t.approximateBytes();
    assert.ok(after > 9_000 && after < 20_000, `${before} → ${after}`);
    let rows = 0;
    for await (const r of t.scan()) {
      rows++;
      assert.deepEqual(r.cells.map((c) => c.family), ["anchor"]);
    }
    assert.equal(rows, 9);
  });
});

Deno.test("scans return rows in key order within start, end, prefix, limit and the tablet's range", async () => {
  const range = { start: b("b"), end: b("y") };
  await withTablet(async (t) => {
    const keys = ["b", "b\0", "b\0\0", "ba", "bb", "c", "c\xff", "x", "xa"];
    for (const k of keys) {
      await t.mutateRow(b(k), [{
        op: "put",
        family: "anchor",
        qualifier: b(""),
        value: b(k),
      }]);
    }
    const scan = async (o: Parameters<Tablet["scan"]>[0] = {}) => {
      const out: string[] = [];
      for await (const r of t.scan(o)) out.push(dec.decode(r.key));
      return out;
    };
    assert.deepEqual(await scan(), keys);
    assert.deepEqual(await scan({ prefix: b("b") }), keys.slice(0, 5));
    assert.deepEqual(await scan({ prefix: b("b\0") }), ["b\0", "b\0\0"]);
    assert.deepEqual(await scan({ start: b("b\0"), end: b("c") }), [
      "b\0",
      "b\0\0",
      "ba",
      "bb",
    ]);
    assert.deepEqual(await scan({ start: b("a"), end: b("zz") }), keys);
    assert.deepEqual(await scan({ start: b("bb"), limit: 2 }), ["bb", "c"]);
    assert.deepEqual(await scan({ start: b("z") }), []);
    await assert.rejects(
      scan({ start: b("c"), end: b("b") }),
      (e) => isTabletError(e, "bad_request"),
    );
    await t.mutateRow(b("ba"), [{ op: "deleteRow" }]);
    assert.deepEqual(await scan({ prefix: b("b"), limit: 4 }), [
      "b",
      "b\0",
      "b\0\0",
      "bb",
    ]);
  }, range);
});

Deno.test("a scan's next calls made at once answer in order while blocks are read; return ends it", async () => {
  await withTablet(async (t) => {
    const keys = Array.from({ length: 300 }, (_, i) => `k${1000 + i}`);
    for (const k of keys) {
      await t.mutateRow(b(k), [{
        op: "put",
        family: "anchor",
        qualifier: b(""),
        value: new Uint8Array(100),
      }]);
    }
    await t.flush(); // rows now come from table blocks read on demand
    const it = t.scan({ limit: 250 });
    const first = await Promise.all(
      Array.from({ length: 200 }, () => it.next()),
    );
    assert.deepEqual(
      first.map((r) => r.done ? "done" : dec.decode(r.value.key)),
      keys.slice(0, 200),
    );
    assert.deepEqual(await it.return(undefined), {
      done: true,
      value: undefined,
    });
    assert.equal((await it.next()).done, true);
    // The ended scan holds no table: a compaction replaces them all.
    await t.compact();
    let n = 0;
    for await (const _ of t.scan({ start: b("k1100"), limit: 1000 })) n++;
    assert.equal(n, 200);
  });
});

Deno.test("checkAndMutate applies one branch atomically; concurrent increments are not lost", async () => {
  await withTablet(async (t) => {
    const r = b("counter");
    const cond = (v: Uint8Array | null) => ({
      family: "anchor",
      qualifier: b("n"),
      equals: v,
    });
    const set = (v: string) => [{
      op: "put" as const,
      family: "anchor",
      qualifier: b("n"),
      value: b(v),
    }];
    assert.equal(
      (await t.checkAndMutate(r, cond(b("0")), set("1"))).matched,
      false,
    );
    assert.equal(
      (await t.checkAndMutate(r, cond(null), set("0"))).matched,
      true,
    );
    assert.equal(
      (await t.checkAndMutate(r, cond(null), set("9"))).matched,
      false,
    );
    // 20 clients each retry compare-and-set until it succeeds.
    const inc = async () => {
      while (true) {
        const cur = (await t.getRow(r))!.cells[0]!.value;
        const next = String(Number(dec.decode(cur)) + 1);
        if ((await t.checkAndMutate(r, cond(cur), set(next))).matched) return;
      }
    };
    await Promise.all(Array.from({ length: 20 }, inc));
    assert.equal(dec.decode((await t.getRow(r))!.cells[0]!.value), "20");
    const mismatch = await t.checkAndMutate(r, cond(b("x")), [], set("m"));
    assert.equal(mismatch.matched, false);
    assert.equal(dec.decode((await t.getRow(r))!.cells[0]!.value), "m");
  });
});

Deno.test("bad input is refused with a typed error and the tablet keeps serving", async () => {
  await withTablet(async (t) => {
    const put = {
      op: "put" as const,
      family: "anchor",
      qualifier: b("q"),
      value: b("v"),
    };
    await rejects(t.mutateRow(b("a"), [put]), "out_of_range");
    await rejects(t.mutateRow(b("zz"), [put]), "out_of_range");
    await rejects(t.getRow(b("a")), "out_of_range");
    await rejects(
      t.mutateRow(b("m"), [{ ...put, family: "nope" }]),
      "bad_request",
    );
    await rejects(t.mutateRow(b("m"), []), "bad_request");
    await rejects(
      t.mutateRow(new Uint8Array(5000).fill(109), [put]),
      "too_large",
    );
    await rejects(
      t.mutateRow(b("m"), [{
        ...put,
        value: new Uint8Array(10 * 2 ** 20 + 1),
      }]),
      "too_large",
    );
    await rejects(
      t.mutateRow(b("m"), [{ ...put, timestamp: -1 }]),
      "bad_request",
    );
    await rejects(
      t.mutateRow(b("m"), [{ ...put, timestamp: 1.5 }]),
      "bad_request",
    );
    await rejects(
      // deno-lint-ignore no-explicit-any
      t.mutateRow(b("m"), [{ op: "nope" } as any]),
      "bad_request",
    );
    await rejects(
      // deno-lint-ignore no-explicit-any
      t.mutateRow(b("m"), [{ ...put, value: "str" } as any]),
      "bad_request",
    );
    await rejects(t.getRow(b("m"), { versions: 0 }), "bad_request");
    await rejects(
      t.getRow(b("m"), { columns: [{ family: "x" }] }),
      "bad_request",
    );
    await rejects(
      (async () => {
        for await (const _ of t.scan({ limit: -1 })) { /* none */ }
      })(),
      "bad_request",
    );
    await t.mutateRow(b("m"), [put]);
    assert.equal((await t.getRow(b("m")))?.cells.length, 1);
  }, { start: b("b"), end: b("y") });
  await assert.rejects(
    openTablet("/nonexistent", { name: "bad name!", families: [] }, ALL),
    (e) => isTabletError(e, "bad_request"),
  );
});

Deno.test("splitKey picks a row in the middle of the data, both halves non-empty", async () => {
  await withTablet(async (t) => {
    assert.equal(await t.splitKey(), undefined);
    await t.mutateRow(b("only"), [{
      op: "put",
      family: "anchor",
      qualifier: b("q"),
      value: b("v"),
    }]);
    assert.equal(await t.splitKey(), undefined, "one row cannot be split");
    const value = new Uint8Array(200).fill(1);
    for (let i = 0; i < 1000; i++) {
      await t.mutateRow(b(`row${String(i).padStart(4, "0")}`), [{
        op: "put",
        family: "anchor",
        qualifier: b("q"),
        value,
      }]);
    }
    const small = dec.decode((await t.splitKey())!);
    assert.ok(small > "row0300" && small < "row0700", small);
    await t.flush();
    const key = dec.decode((await t.splitKey())!);
    assert.ok(key > "row0400" && key < "row0600", key);
    assert.ok(t.approximateBytes() > 200_000);
  });
});

Deno.test("a split copies each half into a child that serves only its rows; a merge joins them back", async () => {
  const root = await Deno.makeTempDir({ prefix: "strata-tablet-split-" });
  const open: Tablet[] = [];
  try {
    const parent = await openTablet(`${root}/p`, SCHEMA, ALL);
    open.push(parent);
    for (let i = 0; i < 300; i++) {
      await parent.mutateRow(b(`row${String(i).padStart(3, "0")}`), [
        { op: "put", family: "anchor", qualifier: b("q"), value: b(`v${i}`) },
        { op: "put", family: "contents", qualifier: b("q"), value: b(`c${i}`) },
      ]);
    }
    await parent.mutateRow(b("row100"), [{ op: "deleteRow" }]);
    const key = (await parent.splitKey())!;
    const left = await openTabletFrom(`${root}/l`, {
      start: ALL.start,
      end: key,
    }, [parent]);
    open.push(left);
    const right = await openTabletFrom(`${root}/r`, {
      start: key,
      end: null,
    }, [parent]);
    open.push(right);
    const rows = async (t: Tablet) => {
      const out: string[] = [];
      for await (const r of t.scan()) {
        out.push(show(r).join(",") + dec.decode(r.key));
      }
      return out;
    };
    const all = await rows(parent);
    assert.equal(all.length, 299);
    const [l, r] = [await rows(left), await rows(right)];
    assert.ok(l.length > 50 && r.length > 50, `${l.length} + ${r.length}`);
    assert.deepEqual([...l, ...r], all);
    const put = {
      op: "put" as const,
      family: "anchor",
      qualifier: b("q"),
      value: b("x"),
    };
    await rejects(left.mutateRow(key, [put]), "out_of_range");
    await rejects(right.mutateRow(b("row000"), [put]), "out_of_range");
    // Timestamps in a child continue above the parent's.
    const last = (await parent.getRow(b("row299")))!.cells[0]!.timestamp;
    assert.ok((await right.mutateRow(b("row299"), [put])).timestamp > last);
    const merged = await openTabletFrom(`${root}/m`, ALL, [left, right]);
    open.push(merged);
    const m = await rows(merged);
    assert.equal(m.length, 299);
    assert.ok(m.at(-1)!.includes("anchor:q@") && m.at(-1)!.includes("=x"));
    await merged.close();
    await rejects(
      openTabletFrom(`${root}/m`, ALL, [left]),
      "bad_request",
    );
  } finally {
    for (const t of open) await t.close();
    await Deno.remove(root, { recursive: true });
  }
});
