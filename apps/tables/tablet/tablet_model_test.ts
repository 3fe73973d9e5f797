/**
 * The tablet against a plain in-memory model of the data model's rules
 * (written from the definitions in types.ts, not from the encoding):
 * random row mutations, check-and-mutates, clock moves (also backwards),
 * gets and scans with columns, versions and asOf, flushes, major
 * compactions and reopens.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { compareBytes } from "@strata/lsm";
import { isTabletError } from "./tablet_error.ts";
import { openTablet } from "./tablet.ts";
import { openTabletFrom } from "./split.ts";
import type {
  Mutation,
  ReadOptions,
  Row,
  ScanOptions,
  TableSchema,
  Tablet,
} from "./types.ts";

const LONG = Deno.env.get("STRATA_LONG") === "1";

// Latin1 strings, one char per byte, so model order is byte order.
const bytes = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const str = (b: Uint8Array) => String.fromCharCode(...b);
const cmp = (a: string, b: string) => compareBytes(bytes(a), bytes(b));

const SCHEMA: TableSchema = {
  name: "model",
  families: [
    { name: "f", maxVersions: 2 },
    { name: "g", ttlMs: 40 },
    { name: "h", maxVersions: 4, ttlMs: 200 },
  ],
};
const POLICY = new Map(
  SCHEMA.families.map((
    f,
  ) => [f.name, { max: f.maxVersions ?? 1, ttl: f.ttlMs ?? Infinity }]),
);
const RANGE = { start: "\0", end: "b" };

const rowArb = fc.constantFrom(
  "a",
  "ab",
  "a\0",
  "\0",
  "\0\0",
  "\x01",
  "b",
  "\xff",
);
const famArb = fc.constantFrom("f", "g", "h");
const qualArb = fc.constantFrom("", "x", "\0", "x\0y", "\xff");
/** Explicit timestamps are offsets from the wall clock at apply time. */
const tsArb = fc.option(fc.integer({ min: -60, max: 20 }), { nil: undefined });

type MutationSpec =
  | { op: "put"; family: string; q: string; v: string; ts?: number }
  | { op: "deleteCells"; family: string; q: string; ts?: number }
  | { op: "deleteFamily"; family: string }
  | { op: "deleteRow" };

const mutationArb: fc.Arbitrary<MutationSpec> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      op: fc.constant("put" as const),
      family: famArb,
      q: qualArb,
      v: fc.string({ maxLength: 6 }),
      ts: tsArb,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("deleteCells" as const),
      family: famArb,
      q: qualArb,
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

const readArb: fc.Arbitrary<ReadSpec> = fc.record({
  columns: fc.option(
    fc.array(
      fc.record({ family: famArb, q: fc.option(qualArb, { nil: undefined }) }),
      { minLength: 1, maxLength: 2 },
    ),
    { nil: undefined },
  ),
  versions: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
  asOf: fc.option(fc.integer({ min: -50, max: 5 }), { nil: undefined }),
});

type Op =
  | { op: "mutate"; row: string; ms: MutationSpec[] }
  | {
    op: "cam";
    row: string;
    family: string;
    q: string;
    equals: string | null;
    yes: MutationSpec[];
    no: MutationSpec[];
  }
  | { op: "tick"; ms: number }
  | { op: "get"; row: string; read: ReadSpec }
  | {
    op: "scan";
    read: ReadSpec;
    start?: string;
    end?: string;
    prefix?: string;
    limit?: number;
  }
  | { op: "flush" }
  | { op: "compact" }
  | { op: "reopen" }
  | { op: "copy"; at?: string };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 10,
    arbitrary: fc.record({
      op: fc.constant("mutate" as const),
      row: rowArb,
      ms: fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("cam" as const),
      row: rowArb,
      family: famArb,
      q: qualArb,
      equals: fc.option(fc.string({ maxLength: 6 }), { nil: null }),
      yes: fc.array(mutationArb, { minLength: 1, maxLength: 2 }),
      no: fc.array(mutationArb, { maxLength: 2 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant("tick" as const),
      ms: fc.oneof(fc.integer({ min: 0, max: 30 }), fc.constant(-100)),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant("get" as const),
      row: rowArb,
      read: readArb,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant("scan" as const),
      read: readArb,
      start: fc.option(rowArb, { nil: undefined }),
      end: fc.option(rowArb, { nil: undefined }),
      prefix: fc.option(fc.constantFrom("a", "\0", ""), { nil: undefined }),
      limit: fc.option(fc.nat(3), { nil: undefined }),
    }, { requiredKeys: ["op", "read"] }),
  },
  { weight: 1, arbitrary: fc.constant({ op: "flush" as const }) },
  { weight: 1, arbitrary: fc.constant({ op: "compact" as const }) },
  { weight: 1, arbitrary: fc.constant({ op: "reopen" as const }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("copy" as const),
      at: fc.option(rowArb, { nil: undefined }),
    }, { requiredKeys: ["op"] }),
  },
);

/** A version as written: `order` is its place in the global write order. */
interface MVersion {
  row: string;
  family: string;
  q: string;
  ts: number;
  deleted: boolean;
  value: string;
  order: number;
}
/** A deletion: hides versions under it with ts <= t written earlier. */
interface MMarker {
  row: string;
  family?: string;
  q?: string;
  t: number;
  order: number;
}

class Model {
  versions: MVersion[] = [];
  markers: MMarker[] = [];
  order = 0;
  lastT = 0;
  /** Each row's last write timestamp. */
  rowLast = new Map<string, number>();

  apply(row: string, ms: MutationSpec[], t: number, wall: number): void {
    for (const m of ms) {
      const order = this.order++;
      const ts = "ts" in m && m.ts !== undefined ? Math.max(0, wall + m.ts) : t;
      if (m.op === "put" || (m.op === "deleteCells" && m.ts !== undefined)) {
        // Same cell, same timestamp: the later write replaces it.
        this.versions = this.versions.filter((v) =>
          !(v.row === row && v.family === m.family && v.q === m.q &&
            v.ts === ts)
        );
        this.versions.push({
          row,
          family: m.family,
          q: m.q,
          ts,
          deleted: m.op !== "put",
          value: m.op === "put" ? m.v : "",
          order,
        });
      } else if (m.op === "deleteCells") {
        this.markers.push({ row, family: m.family, q: m.q, t, order });
      } else if (m.op === "deleteFamily") {
        this.markers.push({ row, family: m.family, t, order });
      } else {
        this.markers.push({ row, t, order });
      }
    }
  }

  /** Versions that exist (visible or slot-holding deleted), per the GC rules. */
  existing(now: number): MVersion[] {
    const hidden = (v: MVersion) =>
      this.markers.some((m) =>
        m.row === v.row && (m.family === undefined || m.family === v.family) &&
        (m.q === undefined || m.q === v.q) && v.ts <= m.t && v.order < m.order
      );
    const out: MVersion[] = [];
    const byColumn = new Map<string, MVersion[]>();
    for (const v of this.versions) {
      if (hidden(v)) continue;
      const k = JSON.stringify([v.row, v.family, v.q]);
      byColumn.set(k, [...byColumn.get(k) ?? [], v]);
    }
    for (const vs of byColumn.values()) {
      vs.sort((a, b) => b.ts - a.ts);
      const p = POLICY.get(vs[0]!.family)!;
      for (const v of vs.slice(0, p.max)) {
        if (v.ts + p.ttl > now) out.push(v);
      }
    }
    return out;
  }

  compact(now: number): void {
    this.versions = this.existing(now);
    this.markers = [];
  }

  rows(now: number, read: ReadSpec, rows: (r: string) => boolean): ModelRow[] {
    const vs = this.existing(now).filter((v) =>
      !v.deleted && rows(v.row) && v.ts <= (read.asOf ?? Infinity) &&
      (read.columns === undefined ||
        read.columns.some((c) =>
          c.family === v.family && (c.q === undefined || c.q === v.q)
        ))
    );
    vs.sort((a, b) =>
      cmp(a.row, b.row) || cmp(a.family, b.family) || cmp(a.q, b.q) ||
      b.ts - a.ts
    );
    const out: ModelRow[] = [];
    let n = 0;
    for (let i = 0; i < vs.length; i++) {
      const v = vs[i]!;
      const prev = vs[i - 1];
      const sameCol = prev !== undefined && prev.row === v.row &&
        prev.family === v.family && prev.q === v.q;
      n = sameCol ? n + 1 : 1;
      if (n > (read.versions ?? Infinity)) continue;
      if (out.length === 0 || out.at(-1)!.key !== v.row) {
        out.push({ key: v.row, cells: [] });
      }
      out.at(-1)!.cells.push(`${v.family}:${v.q}@${v.ts}=${v.value}`);
    }
    return out;
  }
}

interface ReadSpec {
  columns?: { family: string; q?: string }[];
  versions?: number;
  asOf?: number;
}
interface ModelRow {
  key: string;
  cells: string[];
}

function toMutations(ms: MutationSpec[], wall: number): Mutation[] {
  return ms.map((m): Mutation => {
    const ts = "ts" in m && m.ts !== undefined
      ? Math.max(0, wall + m.ts)
      : undefined;
    switch (m.op) {
      case "put":
        return {
          op: "put",
          family: m.family,
          qualifier: bytes(m.q),
          value: bytes(m.v),
          timestamp: ts,
        };
      case "deleteCells":
        return {
          op: "deleteCells",
          family: m.family,
          qualifier: bytes(m.q),
          timestamp: ts,
        };
      default:
        return m;
    }
  });
}

function readOptions(r: ReadSpec): ReadOptions {
  return {
    columns: r.columns?.map((c) => ({
      family: c.family,
      qualifier: c.q === undefined ? undefined : bytes(c.q),
    })),
    versions: r.versions,
    asOf: r.asOf,
  };
}

function shown(r: Row): ModelRow {
  return {
    key: str(r.key),
    cells: r.cells.map((c) =>
      `${c.family}:${str(c.qualifier)}@${c.timestamp}=${str(c.value)}`
    ),
  };
}

const inRange = (r: string) =>
  cmp(r, RANGE.start) >= 0 && cmp(r, RANGE.end) < 0;

Deno.test("the tablet matches a model of the data model under random mutations, reads, flushes, compactions and reopens (fast-check)", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(opArb, { maxLength: 60, size: "max" }),
      async (ops) => {
        const root = await Deno.makeTempDir({ prefix: "strata-tablet-model-" });
        let dir = `${root}/0`;
        let copies = 0;
        let wall = 1_000;
        const range = { start: bytes(RANGE.start), end: bytes(RANGE.end) };
        const options = {
          clock: () => wall,
          lsm: {
            memtableBytes: 512,
            compactionTrigger: 1000,
            sync: "never" as const,
          },
        };
        const open = () => openTablet(dir, SCHEMA, range, options);
        let t: Tablet = await open();
        const model = new Model();
        const now = () => Math.max(wall, model.lastT);
        const write = async (
          row: string,
          run: () => Promise<{ timestamp: number }>,
          ms: () => MutationSpec[] | undefined,
        ) => {
          if (!inRange(row)) {
            await assert.rejects(
              run(),
              (e) => isTabletError(e, "out_of_range"),
            );
            return;
          }
          const chosen = ms; // decided after the call for checkAndMutate
          const { timestamp } = await run();
          const list = chosen();
          if (list === undefined || list.length === 0) {
            return;
          }
          assert.ok(timestamp >= model.lastT, "timestamps never fall");
          assert.ok(
            timestamp > (model.rowLast.get(row) ?? -1),
            "a row's timestamps rise",
          );
          assert.ok(timestamp >= wall, "timestamps are not behind the clock");
          model.lastT = timestamp;
          model.rowLast.set(row, timestamp);
          model.apply(row, list, timestamp, wall);
        };
        try {
          for (const o of ops) {
            switch (o.op) {
              case "mutate":
                await write(
                  o.row,
                  () => t.mutateRow(bytes(o.row), toMutations(o.ms, wall)),
                  () => o.ms,
                );
                break;
              case "cam": {
                const expected = model.rows(now(), {
                  columns: [{ family: o.family, q: o.q }],
                  versions: 1,
                }, (r) => r === o.row)[0]?.cells[0];
                const cur = expected === undefined
                  ? null
                  : expected.slice(expected.indexOf("=") + 1);
                const matched = cur === o.equals;
                let got: boolean | undefined;
                await write(
                  o.row,
                  async () => {
                    const r = await t.checkAndMutate(
                      bytes(o.row),
                      {
                        family: o.family,
                        qualifier: bytes(o.q),
                        equals: o.equals === null ? null : bytes(o.equals),
                      },
                      toMutations(o.yes, wall),
                      toMutations(o.no, wall),
                    );
                    got = r.matched;
                    return r;
                  },
                  () => matched ? o.yes : o.no,
                );
                if (got !== undefined) {
                  assert.equal(
                    got,
                    matched,
                    "cam matched",
                  );
                }
                break;
              }
              case "tick":
                wall += o.ms;
                break;
              case "get": {
                const read = { ...o.read, asOf: asOfAt(o.read.asOf, wall) };
                if (!inRange(o.row)) {
                  await assert.rejects(
                    t.getRow(bytes(o.row), readOptions(read)),
                    (e) => isTabletError(e, "out_of_range"),
                  );
                  break;
                }
                const got = await t.getRow(bytes(o.row), readOptions(read));
                const want = model.rows(now(), read, (r) => r === o.row)[0];
                assert.deepEqual(got && shown(got), want, `get ${o.row}`);
                break;
              }
              case "scan": {
                const read = { ...o.read, asOf: asOfAt(o.read.asOf, wall) };
                const opts: ScanOptions = {
                  ...readOptions(read),
                  start: o.start === undefined ? undefined : bytes(o.start),
                  end: o.end === undefined ? undefined : bytes(o.end),
                  prefix: o.prefix === undefined ? undefined : bytes(o.prefix),
                  limit: o.limit,
                };
                if (
                  o.start !== undefined && o.end !== undefined &&
                  cmp(o.start, o.end) > 0
                ) {
                  await assert.rejects(
                    (async () => {
                      for await (const _ of t.scan(opts)) { /* nothing */ }
                    })(),
                    (e) => isTabletError(e, "bad_request"),
                  );
                  break;
                }
                const got: ModelRow[] = [];
                for await (const r of t.scan(opts)) got.push(shown(r));
                const want = model.rows(now(), read, (r) =>
                  inRange(r) &&
                  (o.start === undefined || cmp(r, o.start) >= 0) &&
                  (o.end === undefined || cmp(r, o.end) < 0) &&
                  (o.prefix === undefined || r.startsWith(o.prefix))).slice(
                    0,
                    o.limit ?? Infinity,
                  );
                assert.deepEqual(got, want, "scan");
                break;
              }
              case "flush":
                await t.flush();
                break;
              case "compact":
                await t.compact();
                model.compact(now());
                break;
              case "reopen":
                await t.close();
                t = await open();
                break;
              case "copy": {
                // A split at `at` and a merge of the two halves, or one copy:
                // either way the data is the compacted data.
                const parts: Tablet[] = [];
                const mid = o.at !== undefined && inRange(o.at) &&
                    cmp(o.at, RANGE.start) > 0
                  ? bytes(o.at)
                  : undefined;
                const halves = mid === undefined
                  ? [range]
                  : [{ start: range.start, end: mid }, {
                    start: mid,
                    end: range.end,
                  }];
                for (const h of halves) {
                  parts.push(
                    await openTabletFrom(
                      `${root}/${++copies}`,
                      h,
                      [t],
                      options,
                    ),
                  );
                }
                // Each part holds exactly the rows of its half.
                for (let i = 0; i < parts.length; i++) {
                  const h = halves[i]!;
                  const got: ModelRow[] = [];
                  for await (const r of parts[i]!.scan()) got.push(shown(r));
                  const want = model.rows(
                    now(),
                    {},
                    (r) => cmp(r, str(h.start)) >= 0 && cmp(r, str(h.end)) < 0,
                  );
                  assert.deepEqual(got, want, "a part of a split");
                }
                await t.close();
                dir = `${root}/${++copies}`;
                t = await openTabletFrom(dir, range, parts, options);
                for (const p of parts) await p.close();
                model.compact(now());
                break;
              }
            }
          }
        } finally {
          await t.close();
          await Deno.remove(root, { recursive: true });
        }
      },
    ),
    { numRuns: LONG ? 400 : 60 },
  );
});

function asOfAt(offset: number | undefined, wall: number): number | undefined {
  return offset === undefined ? undefined : Math.max(0, wall + offset);
}
