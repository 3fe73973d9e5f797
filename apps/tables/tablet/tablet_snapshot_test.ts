import assert from "node:assert/strict";
import { isTabletError } from "./tablet_error.ts";
import { openTablet } from "./tablet.ts";
import type { KeyRange, Row, TableSchema, Tablet } from "./types.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const b = (s: string) => enc.encode(s);
const ALL: KeyRange = { start: new Uint8Array(0), end: null };
const SCHEMA: TableSchema = {
  name: "snap",
  families: [{ name: "f" }, { name: "tmp", ttlMs: 1000 }],
};

async function withTablet(
  fn: (t: Tablet, ctl: { now: number }) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "strata-snap-" });
  const ctl = { now: 1_000_000 };
  const t = await openTablet(dir, SCHEMA, ALL, { clock: () => ctl.now });
  try {
    await fn(t, ctl);
  } finally {
    await t.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const show = (rows: Row[]) =>
  rows.flatMap((r) =>
    r.cells.map((c) =>
      `${dec.decode(r.key)}/${c.family}:${
        dec.decode(c.qualifier)
      }@${c.timestamp}=${dec.decode(c.value)}`
    )
  );
const scan = async (t: Tablet, asOf: number, consistent: boolean) => {
  const rows: Row[] = [];
  for await (const r of t.scan({ asOf, consistent })) rows.push(r);
  return show(rows);
};
const put = (t: Tablet, row: string, fam: string, v: string) =>
  t.mutateRow(b(row), [{
    op: "put",
    family: fam,
    qualifier: b("q"),
    value: b(v),
  }]);

/** Writes at 1_000_001..3, then overwrites, deletes and lets a TTL expire after T = 1_000_010. */
async function history(t: Tablet, ctl: { now: number }): Promise<number> {
  ctl.now = 1_000_001;
  await put(t, "a", "f", "a1");
  ctl.now = 1_000_002;
  await put(t, "b", "f", "b1");
  ctl.now = 1_000_003;
  await put(t, "c", "tmp", "c1");
  const T = 1_000_010;
  ctl.now = T + 1;
  await put(t, "a", "f", "a2"); // maxVersions 1: a1 is gone for readers now
  await t.mutateRow(b("b"), [{ op: "deleteRow" }]);
  await put(t, "d", "f", "d1");
  ctl.now = 1_000_003 + 1000; // c1 expired
  return T;
}

const AT_T = [
  "a/f:q@1000001=a1",
  "b/f:q@1000002=b1",
  "c/tmp:q@1000003=c1",
];

Deno.test("a consistent scan as of T ignores later overwrites, deletes and TTL expiry; a plain asOf scan does not", async () => {
  await withTablet(async (t, ctl) => {
    await t.holdSnapshot(1_000_000, 60_000);
    const T = await history(t, ctl);
    assert.deepEqual(await scan(t, T, true), AT_T);
    assert.deepEqual(await scan(t, T, false), []);
    // a2, b's deletion and d1 in one millisecond: distinct rows share it.
    assert.deepEqual(await scan(t, ctl.now, false), [
      "a/f:q@1000011=a2",
      "d/f:q@1000011=d1",
    ]);
  });
});

Deno.test("a hold keeps a compaction from dropping what a consistent scan as of T needs", async () => {
  await withTablet(async (t, ctl) => {
    ctl.now = 1_000_000;
    await put(t, "z", "f", "z0");
    await t.holdSnapshot(1_000_000, 60_000);
    const T = await history(t, ctl);
    await t.compact(); // held: keeps everything
    assert.deepEqual(await scan(t, T, true), [...AT_T, "z/f:q@1000000=z0"]);
  });
});

Deno.test("without a hold, a consistent scan as of a time before a GC compaction is refused as compacted", async () => {
  await withTablet(async (t, ctl) => {
    const T = await history(t, ctl);
    await t.compact();
    await assert.rejects(
      scan(t, T, true),
      (e) => isTabletError(e, "compacted"),
    );
    await assert.rejects(
      t.holdSnapshot(T, 1000),
      (e) => isTabletError(e, "compacted"),
    );
    // As of now it is fine, and it matches the plain read.
    assert.deepEqual(
      await scan(t, ctl.now, true),
      await scan(t, ctl.now, false),
    );
  });
});

Deno.test("a consistent read as of now includes a write in flight; asOf far ahead is refused", async () => {
  await withTablet(async (t, ctl) => {
    ctl.now = 1_000_005;
    const w = put(t, "a", "f", "x"); // timestamp 1_000_005, in flight
    const rows = await scan(t, 1_000_005, true);
    await w;
    assert.deepEqual(rows, ["a/f:q@1000005=x"]);
    await assert.rejects(
      t.holdSnapshot(ctl.now + 60_000, 10),
      (e) => isTabletError(e, "bad_request"),
    );
  });
});

Deno.test("a marker replaced while GC is held keeps the one in force at T; replaced unheld, reads as of T are refused", async () => {
  for (const held of [true, false]) {
    await withTablet(async (t, ctl) => {
      ctl.now = 1_000_001;
      await put(t, "a", "f", "a1");
      ctl.now = 1_000_002;
      await t.mutateRow(b("a"), [{ op: "deleteRow" }]); // in force at T
      ctl.now = 1_000_003;
      await put(t, "a", "f", "a2");
      const T = 1_000_005;
      if (held) await t.holdSnapshot(T, 60_000);
      ctl.now = 1_000_010;
      await t.mutateRow(b("a"), [{ op: "deleteRow" }]); // replaces the marker
      if (held) {
        assert.deepEqual(await scan(t, T, true), ["a/f:q@1000003=a2"]);
        assert.deepEqual(await scan(t, ctl.now, true), []);
      } else {
        await assert.rejects(
          scan(t, T, true),
          (e) => isTabletError(e, "compacted"),
        );
      }
    });
  }
});
