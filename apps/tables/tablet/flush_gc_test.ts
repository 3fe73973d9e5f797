/**
 * A flush leaves out the cell versions no read from then on can see
 * ({@link FlushGc}), unless GC is held, and consistent reads as of
 * earlier times are refused as after a GC compaction.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { LsmStore } from "@strata/lsm";
import { ROW_SPACE_START } from "./key_codec.ts";
import { isTabletError } from "./tablet_error.ts";
import { openTablet } from "./tablet.ts";
import type { Mutation, Row, TableSchema, Tablet } from "./types.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const b = (s: string) => enc.encode(s);
const ALL = { start: new Uint8Array(0), end: null };
const SCHEMA: TableSchema = {
  name: "flushgc",
  families: [{ name: "f" }, { name: "g", maxVersions: 2 }, {
    name: "h",
    maxVersions: 3,
    ttlMs: 30,
  }],
};

const show = (rows: Row[]) =>
  rows.flatMap((r) =>
    r.cells.map((c) =>
      `${dec.decode(r.key)}/${c.family}:${
        dec.decode(c.qualifier)
      }@${c.timestamp}=${dec.decode(c.value)}`
    )
  );

async function scan(t: Tablet, asOf?: number): Promise<string[]> {
  const rows: Row[] = [];
  const consistent = asOf !== undefined;
  for await (
    const r of t.scan(consistent ? { asOf, consistent } : {})
  ) rows.push(r);
  return show(rows);
}

/** The cell entries in the tablet's tables (the log replays nothing after a flush). */
async function storedCells(dir: string): Promise<number> {
  const lsm = await LsmStore.open(dir);
  try {
    let n = 0;
    for await (const _ of lsm.scan({ start: ROW_SPACE_START })) n++;
    return n;
  } finally {
    await lsm.close();
  }
}

const put = (t: Tablet, row: string, family: string, v: string) =>
  t.mutateRow(b(row), [{ op: "put", family, qualifier: b("q"), value: b(v) }]);

Deno.test("a flush leaves out the versions a family no longer keeps; consistent reads from before them are refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-flushgc-" });
  const ctl = { now: 1_000_000 };
  const t = await openTablet(dir, SCHEMA, ALL, { clock: () => ctl.now });
  try {
    for (let i = 1; i <= 3; i++) {
      ctl.now = 1_000_000 + 10 * i;
      await t.mutateRow(b("a"), [
        { op: "put", family: "f", qualifier: b("q"), value: b(`f${i}`) },
        { op: "put", family: "g", qualifier: b("q"), value: b(`g${i}`) },
      ]);
    }
    const before = await scan(t);
    assert.deepEqual(before, [
      "a/f:q@1000030=f3",
      "a/g:q@1000030=g3",
      "a/g:q@1000020=g2",
    ]);
    ctl.now = 1_000_040;
    await t.flush();
    assert.deepEqual(await scan(t), before);
    // f keeps 1 version, g 2: f1, f2 and g1 are not in the table.
    await t.close();
    assert.equal(await storedCells(dir), 3);
    const t2 = await openTablet(dir, SCHEMA, ALL, { clock: () => ctl.now });
    assert.deepEqual(await scan(t2), before);
    await t2.close();
  } finally {
    await t.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the horizon a flush moves: consistent reads before the overwrite are refused, after it answered", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-flushgc-" });
  const ctl = { now: 1_000_000 };
  const t = await openTablet(dir, SCHEMA, ALL, { clock: () => ctl.now });
  try {
    ctl.now = 1_000_010;
    await put(t, "a", "f", "old");
    ctl.now = 1_000_020;
    await put(t, "a", "f", "new");
    ctl.now = 1_000_030;
    assert.deepEqual(await scan(t, 1_000_015), ["a/f:q@1000010=old"]);
    await t.flush();
    await assert.rejects(
      scan(t, 1_000_015),
      (e) => isTabletError(e, "compacted"),
    );
    assert.deepEqual(await scan(t, 1_000_020), ["a/f:q@1000020=new"]);
  } finally {
    await t.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("with two versions kept, a version is dead from the second newer write on", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-flushgc-" });
  const ctl = { now: 1_000_000 };
  const t = await openTablet(dir, SCHEMA, ALL, { clock: () => ctl.now });
  try {
    for (let i = 1; i <= 3; i++) {
      ctl.now = 1_000_000 + 10 * i;
      await put(t, "a", "g", `g${i}`);
    }
    ctl.now = 1_000_040;
    assert.deepEqual(await scan(t, 1_000_025), [
      "a/g:q@1000020=g2",
      "a/g:q@1000010=g1",
    ]);
    await t.flush();
    // g1 is needed as of 1_000_020..29, dead from g3's write on.
    await assert.rejects(
      scan(t, 1_000_025),
      (e) => isTabletError(e, "compacted"),
    );
    assert.deepEqual(await scan(t, 1_000_030), [
      "a/g:q@1000030=g3",
      "a/g:q@1000020=g2",
    ]);
  } finally {
    await t.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a held snapshot still reads its versions after a flush, which keeps them all", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-flushgc-" });
  const ctl = { now: 1_000_000 };
  const t = await openTablet(dir, SCHEMA, ALL, { clock: () => ctl.now });
  try {
    ctl.now = 1_000_010;
    await put(t, "a", "f", "old");
    ctl.now = 1_000_020;
    await t.holdSnapshot(1_000_015, 60_000);
    await put(t, "a", "f", "new");
    await put(t, "a", "f", "newer");
    ctl.now = 1_000_030;
    await t.flush();
    assert.deepEqual(await scan(t, 1_000_015), ["a/f:q@1000010=old"]);
    assert.deepEqual(await scan(t), ["a/f:q@1000021=newer"]);
    await t.close();
    assert.equal(await storedCells(dir), 3);
  } finally {
    await t.close();
    await Deno.remove(dir, { recursive: true });
  }
});

type Op =
  | { op: "mutate"; row: string; muts: MutSpec[] }
  | { op: "tick"; ms: number }
  | { op: "flush" }
  | { op: "hold"; back: number; ms: number }
  | { op: "read"; back: number };
type MutSpec =
  | { op: "put"; family: string; q: string; v: string; ts?: number }
  | { op: "deleteCells"; family: string; q: string; ts?: number }
  | { op: "deleteFamily"; family: string }
  | { op: "deleteRow" };

const famArb = fc.constantFrom("f", "g", "h");
const qArb = fc.constantFrom("q", "q", "r");
const tsArb = fc.option(fc.integer({ min: -40, max: 5 }), { nil: undefined });
const mutArb: fc.Arbitrary<MutSpec> = fc.oneof(
  {
    weight: 40,
    arbitrary: fc.record({
      op: fc.constant("put" as const),
      family: famArb,
      q: qArb,
      v: fc.constantFrom("1", "2", "3"),
      ts: tsArb,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("deleteCells" as const),
      family: famArb,
      q: qArb,
      ts: tsArb,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("deleteFamily" as const),
      family: famArb,
    }),
  },
  { weight: 1, arbitrary: fc.constant({ op: "deleteRow" as const }) },
);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 10,
    arbitrary: fc.record({
      op: fc.constant("mutate" as const),
      row: fc.constantFrom("a", "b"),
      muts: fc.array(mutArb, { minLength: 1, maxLength: 3 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant("tick" as const),
      ms: fc.integer({ min: 0, max: 15 }),
    }),
  },
  { weight: 2, arbitrary: fc.constant({ op: "flush" as const }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("hold" as const),
      back: fc.integer({ min: 1, max: 30 }),
      // 0: a hold that is over at once (flushes drop again after it).
      ms: fc.constantFrom(0, 60_000),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant("read" as const),
      back: fc.integer({ min: 1, max: 60 }),
    }),
  },
);

function mutation(m: MutSpec, now: number): Mutation {
  const ts = "ts" in m && m.ts !== undefined ? now + m.ts : undefined;
  switch (m.op) {
    case "put":
      return {
        op: "put",
        family: m.family,
        qualifier: b(m.q),
        value: b(m.v),
        ...(ts !== undefined ? { timestamp: ts } : {}),
      };
    case "deleteCells":
      return {
        op: "deleteCells",
        family: m.family,
        qualifier: b(m.q),
        ...(ts !== undefined ? { timestamp: ts } : {}),
      };
    case "deleteFamily":
      return { op: "deleteFamily", family: m.family };
    case "deleteRow":
      return { op: "deleteRow" };
  }
}

/** The consistent scan as of `asOf`, or undefined when refused as compacted. */
async function consistent(t: Tablet, asOf: number) {
  try {
    return await scan(t, asOf);
  } catch (e) {
    if (isTabletError(e, "compacted")) return undefined;
    throw e;
  }
}

const seen = { compared: 0, refusedOnlyByFlush: 0 };

Deno.test("reads of a tablet whose flushes leave out dead versions match one that never flushes, consistent reads as of past times included (fast-check)", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(opArb, { minLength: 20, maxLength: 60 }),
      async (ops) => {
        const dirs = [
          await Deno.makeTempDir({ prefix: "strata-flushgc-" }),
          await Deno.makeTempDir({ prefix: "strata-flushgc-" }),
        ];
        const ctl = { now: 1_000_000 };
        const [t, ref] = await Promise.all(
          dirs.map((d) =>
            openTablet(d, SCHEMA, ALL, {
              clock: () => ctl.now,
              lsm: { sync: "never" },
            })
          ),
        );
        try {
          // Past the horizon of the open: reads as of the whole history.
          ctl.now += 100;
          let heldFrom = Infinity;
          // Every (cell, timestamp) written so far.
          const versions = new Set<string>();
          for (const o of ops) {
            switch (o.op) {
              case "mutate": {
                // A cell written again at a timestamp it already has (an
                // explicit timestamp, or a later automatic one reaching an
                // explicit one from now or the future) replaces that version's
                // entry: consistent reads as of a time between the two
                // writes are wrong then (a known bug, README "Not done";
                // the ignored test below). Such mutations are left out.
                const cells = (ts: number) =>
                  o.muts.flatMap((m) =>
                    m.op === "put" || m.op === "deleteCells"
                      ? [
                        `${o.row}/${m.family}:${m.q}@${ctl.now + (m.ts ?? ts)}`,
                      ]
                      : []
                  );
                const explicit = o.muts.filter((m) =>
                  (m.op === "put" || m.op === "deleteCells") &&
                  m.ts !== undefined
                );
                if (
                  explicit.some((m) => "ts" in m && m.ts! >= 0) ||
                  cells(NaN).some((c) => versions.has(c))
                ) break;
                const muts = o.muts.map((m) => mutation(m, ctl.now));
                const [x, y] = await Promise.all([
                  t!.mutateRow(b(o.row), muts),
                  ref!.mutateRow(b(o.row), muts),
                ]);
                assert.equal(x.timestamp, y.timestamp);
                for (const c of cells(x.timestamp - ctl.now)) versions.add(c);
                break;
              }
              case "tick":
                ctl.now += o.ms;
                break;
              case "flush":
                await t!.flush();
                break;
              case "hold": {
                const asOf = ctl.now - o.back;
                // Either may refuse (a replaced marker moves the horizon too).
                const [held] = await Promise.allSettled([
                  t!.holdSnapshot(asOf, o.ms),
                  ref!.holdSnapshot(asOf, o.ms),
                ]);
                if (held.status === "fulfilled" && o.ms > 0) {
                  heldFrom = Math.min(heldFrom, asOf);
                }
                break;
              }
              case "read": {
                assert.deepEqual(await scan(t!), await scan(ref!));
                const asOf = ctl.now - o.back;
                const got = await consistent(t!, asOf);
                // A hold keeps every read as of its time or later answered.
                if (asOf >= heldFrom) assert.notEqual(got, undefined);
                const want = await consistent(ref!, asOf);
                if (got === undefined && want !== undefined) {
                  seen.refusedOnlyByFlush++;
                }
                if (got !== undefined && want !== undefined) {
                  seen.compared++;
                  assert.deepEqual(got, want, `as of ${asOf}`);
                }
                break;
              }
            }
          }
          await t!.flush();
          assert.deepEqual(await scan(t!), await scan(ref!));
        } finally {
          await Promise.all([t?.close(), ref?.close()]);
          for (const d of dirs) await Deno.remove(d, { recursive: true });
        }
      },
    ),
    { numRuns: 40 },
  );
  // Not vacuous: flushes did refuse reads, and many were compared.
  assert.ok(
    seen.refusedOnlyByFlush > 0 && seen.compared > 50,
    JSON.stringify(seen),
  );
});

Deno.test({
  name:
    "known bug (README Not done): a consistent read as of a time between a version's write and its replacement at the same timestamp sees the value it had",
  ignore: true,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "strata-flushgc-" });
    const ctl = { now: 1_000_000 };
    const t = await openTablet(dir, SCHEMA, ALL, {
      clock: () => ctl.now,
      lsm: { sync: "never" },
    });
    try {
      const put = (v: string, timestamp?: number) =>
        t.mutateRow(b("a"), [{
          op: "put",
          family: "f",
          qualifier: b("q"),
          value: b(v),
          ...(timestamp !== undefined ? { timestamp } : {}),
        }]);
      ctl.now += 100;
      const { timestamp } = await put("old");
      ctl.now += 10;
      await put("new", timestamp); // the same version, written again
      assert.deepEqual(await scan(t, ctl.now - 5), [`a/f:q@${timestamp}=old`]);
    } finally {
      await t.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
