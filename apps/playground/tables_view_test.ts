import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  keyText,
  locateRow,
  RowFollow,
  serverViews,
  tabletChanges,
  tabletViews,
  type TabletWire,
} from "./tables_view.ts";

const b = (s: string) => Buffer.from(s).toString("base64");
const tablet = (
  id: string,
  start: string,
  end: string | null,
  server: string | null,
  bytes?: number,
): TabletWire => ({
  id,
  table: "animals",
  start: b(start),
  end: end === null ? null : b(end),
  server,
  url: server && `http://127.0.0.1/${server}`,
  ...(bytes !== undefined ? { bytes } : {}),
});

Deno.test("row keys show as text, or hex when not printable UTF-8", () => {
  assert.equal(keyText(b("koala")), "koala");
  assert.equal(keyText(""), "");
  assert.equal(keyText(Buffer.from([0xff, 0x00]).toString("base64")), "0xff00");
  assert.equal(keyText(b("a\nb")), "0x610a62");
});

Deno.test("tablets sort by table then key bytes; servers count their tablets and bytes", () => {
  const other = { ...tablet("o1", "", null, "ts1", 5), table: "aaa" };
  const views = tabletViews([
    tablet("t2", "m", null, "ts2", 100),
    tablet("t1", "", "m", "ts1", 40),
    other,
  ]);
  assert.deepEqual(views.map((t) => t.id), ["o1", "t1", "t2"]);
  assert.deepEqual(views[1], {
    id: "t1",
    table: "animals",
    start: "",
    end: "m",
    server: "ts1",
    bytes: 40,
  });
  assert.equal(views[2]!.end, null);
  const servers = serverViews([
    {
      id: "ts1",
      url: "u1",
      process: "up",
      status: { serving: true },
    },
    {
      id: "ts2",
      url: "u2",
      process: "up",
      status: { serving: false, reason: "kv session lost" },
    },
    { id: "ts3", url: "u3", process: "killed", status: null },
  ], views);
  assert.deepEqual(
    servers.map((s) => [s.id, s.tablets, s.bytes, s.serving, s.reason]),
    [
      ["ts1", 2, 45, true, null],
      ["ts2", 1, 100, false, "kv session lost"],
      ["ts3", 0, 0, null, null],
    ],
  );
});

Deno.test("a row is found in the tablet whose [start, end) holds it", () => {
  const map = [
    tablet("t1", "", "k", "ts1"),
    tablet("t2", "k", "t", "ts2"),
    tablet("t3", "t", null, "ts3"),
  ];
  const at = (row: string) =>
    locateRow(map, "animals", new TextEncoder().encode(row))?.id;
  assert.equal(at("aardvark"), "t1");
  assert.equal(at("k"), "t2", "start is inclusive");
  assert.equal(at("stoat"), "t2");
  assert.equal(at("t"), "t3", "end is exclusive");
  assert.equal(at("zebra"), "t3");
  assert.equal(
    locateRow(map, "plants", new TextEncoder().encode("x")),
    undefined,
  );
});

Deno.test("changes: a split names its key and children; moves, losses and reassignments are told apart", () => {
  const before = [
    tablet("t1", "", "m", "ts1"),
    tablet("t2", "m", null, "ts2"),
  ];
  assert.deepEqual(tabletChanges(before, before, 1), []);

  const split = tabletChanges(before, [
    tablet("t1", "", "m", "ts1"),
    tablet("t3", "m", "raven", "ts2"),
    tablet("t4", "raven", null, "ts3"),
  ], 7);
  assert.equal(split.length, 1);
  assert.equal(split[0]!.kind, "split");
  assert.equal(split[0]!.tablet, "t2");
  assert.deepEqual(split[0]!.children, ["t3", "t4"]);
  assert.equal(split[0]!.at, 7);
  assert.match(split[0]!.text, /t2 split at "raven" into t3 \+ t4/);

  // A bounded parent: children must lie inside it.
  const bounded = tabletChanges(
    [tablet("p", "c", "k", "ts1"), tablet("q", "k", null, "ts1")],
    [
      tablet("c1", "c", "f", "ts1"),
      tablet("c2", "f", "k", "ts1"),
      tablet("q", "k", null, "ts1"),
    ],
    1,
  );
  assert.deepEqual(bounded.map((e) => [e.kind, e.tablet, e.children]), [
    ["split", "p", ["c1", "c2"]],
  ]);

  // Two dropped neighbours inside one fresh tablet: a merge, not a split.
  const merged = tabletChanges(
    [
      tablet("a", "", "g", "ts1"),
      tablet("b", "g", "m", "ts2"),
      tablet("c", "m", null, "ts1"),
    ],
    [tablet("ab", "", "m", "ts2"), tablet("c", "m", null, "ts1")],
    3,
  );
  assert.deepEqual(merged.map((e) => [e.kind, e.tablet, e.children, e.text]), [
    ["merged", "ab", ["a", "b"], "a + b merged into ab"],
  ]);

  // A dropped tablet with no children is not a split.
  assert.deepEqual(
    tabletChanges(before, [tablet("t1", "", "m", "ts1")], 1),
    [],
  );

  const moved = tabletChanges(before, [
    tablet("t1", "", "m", null),
    tablet("t2", "m", null, "ts3"),
  ], 1);
  assert.deepEqual(moved.map((e) => [e.kind, e.tablet, e.from, e.to]), [
    ["unassigned", "t1", "ts1", null],
    ["moved", "t2", "ts2", "ts3"],
  ]);
  const reassigned = tabletChanges(
    before,
    [
      tablet("t1", "", "m", "ts2"),
      tablet("t2", "m", null, "ts2"),
    ],
    1,
    new Set(["ts1"]),
  );
  assert.deepEqual(reassigned.map((e) => [e.kind, e.text]), [
    ["reassigned", "t1 reassigned from dead ts1 to ts2"],
  ]);
  const back = tabletChanges(
    [tablet("t1", "", "m", null)],
    [tablet("t1", "", "m", "ts2")],
    1,
  );
  assert.deepEqual(back.map((e) => [e.kind, e.text]), [
    ["assigned", "t1 assigned to ts2"],
  ]);
});

Deno.test("a followed row's history grows only when its tablet or server changes; a failed read keeps the last cells", () => {
  const f = new RowFollow("animals", "koala");
  assert.deepEqual(f.view().history, []);
  assert.equal(f.view().cells, null);
  f.locatedAt("t1", "ts1", 1);
  f.locatedAt("t1", "ts1", 2);
  f.read({ cells: [{ column: "info:name", timestamp: 5, value: "koala" }] });
  f.locatedAt("t3", "ts1", 3); // split
  f.locatedAt("t3", null, 4); // its server died
  f.read({ error: "not_serving" });
  f.locatedAt("t3", "ts2", 5); // reassigned
  const v = f.view();
  assert.deepEqual(v.history, [
    { at: 1, tablet: "t1", server: "ts1" },
    { at: 3, tablet: "t3", server: "ts1" },
    { at: 4, tablet: "t3", server: null },
    { at: 5, tablet: "t3", server: "ts2" },
  ]);
  assert.equal(v.tablet, "t3");
  assert.equal(v.server, "ts2");
  assert.equal(v.error, "not_serving");
  assert.deepEqual(v.cells, [{
    column: "info:name",
    timestamp: 5,
    value: "koala",
  }]);
  f.read({ cells: [] });
  assert.equal(f.view().error, null);
  for (let i = 0; i < 20; i++) f.locatedAt(`x${i}`, "ts1", 10 + i);
  assert.equal(f.view().history.length, 10, "the history is bounded");
});
