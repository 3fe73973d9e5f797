import assert from "node:assert/strict";
import fc from "fast-check";
import { z } from "zod";
import { isCodecError } from "./codec_error.ts";
import { FrameDecoder } from "./frame_decoder.ts";
import { defineMessage, defineMessageSet } from "./message.ts";
import {
  AppendEntries,
  Heartbeat,
  SearchTopN,
} from "../../fixtures/codec_messages.ts";

const nat = fc.nat({ max: 2 ** 40 });
const plain = { noNullPrototype: true } as const;
const entry = fc.record(
  { term: nat, index: nat, data: fc.uint8Array() },
  plain,
);
const appendEntries = fc.record({
  term: nat,
  from: nat,
  to: nat,
  prevIndex: nat,
  prevTerm: nat,
  commit: nat,
  entries: fc.array(entry, { maxLength: 20 }),
}, plain);
// cbor-x writes -0 as the integer 0 (documented in the README), so the
// generator leaves negative zero out.
const score = fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) =>
  x === 0 ? 0 : x
);
const topN = fc.record({
  shard: nat,
  took: fc.double({ min: 0, max: 1e6, noNaN: true }),
  total: nat,
  hits: fc.array(
    fc.record(
      {
        id: fc.string(),
        score,
        snippet: fc.string(),
      },
      { requiredKeys: ["id", "score"], noNullPrototype: true },
    ),
    { maxLength: 10 },
  ),
}, plain);

Deno.test("messages round-trip exactly through encode and decode", () => {
  fc.assert(
    fc.property(appendEntries, (m) => {
      assert.deepEqual(AppendEntries.decode(AppendEntries.encode(m)), m);
    }),
    { numRuns: 300 },
  );
  fc.assert(
    fc.property(topN, (m) => {
      assert.deepEqual(SearchTopN.decode(SearchTopN.encode(m)), m);
    }),
    { numRuns: 300 },
  );
});

Deno.test("field names never travel: a heartbeat is smaller than its JSON", () => {
  const hb = { term: 12, from: 1, to: 2, commit: 4096 };
  const bytes = Heartbeat.encode(hb);
  assert.ok(bytes.length < JSON.stringify(hb).length / 3, `${bytes.length} B`);
  assert.ok(!new TextDecoder().decode(bytes).includes("term"));
});

Deno.test("a message that breaks its schema is a schema_violation, with the field path", () => {
  const wrong = Heartbeat.encode(
    { term: -1, from: 1, to: 2, commit: 3 } as never,
  );
  assert.throws(
    () => Heartbeat.decode(wrong),
    (e) =>
      isCodecError(e, "schema_violation") && /Heartbeat\.term/.test(e.message),
  );
  // A structure of the wrong width (another message's bytes).
  assert.throws(
    () =>
      AppendEntries.decode(
        Heartbeat.encode({ term: 1, from: 1, to: 2, commit: 3 }),
      ),
    (e) => isCodecError(e, "schema_violation"),
  );
  const nested = AppendEntries.encode({
    term: 1,
    from: 1,
    to: 2,
    prevIndex: 0,
    prevTerm: 0,
    commit: 0,
    entries: [{ term: 1, index: 1, data: "nope" as never }],
  });
  assert.throws(
    () => AppendEntries.decode(nested),
    (e) =>
      isCodecError(e, "schema_violation") && /entries\.0\.data/.test(e.message),
  );
});

Deno.test("truncated message bytes are reported as truncated", () => {
  const bytes = SearchTopN.encode({
    shard: 1,
    took: 1.5,
    total: 3,
    hits: [{ id: "a", score: 1 }, { id: "b", score: 0.5, snippet: "x" }],
  });
  for (let cut = 0; cut < bytes.length; cut++) {
    assert.throws(
      () => SearchTopN.decode(bytes.subarray(0, cut)),
      (e) => isCodecError(e),
    );
  }
});

Deno.test("a message set gives stable ids by name and decodes frames by type", () => {
  const set = defineMessageSet([SearchTopN, Heartbeat, AppendEntries]);
  assert.deepEqual(set.types.map((t) => t.name), [
    "AppendEntries",
    "Heartbeat",
    "SearchTopN",
  ]);
  assert.equal(set.typeId(Heartbeat), 2);
  const frame = set.encodeFrame(Heartbeat, {
    term: 1,
    from: 2,
    to: 3,
    commit: 4,
  });
  const [decoded] = new FrameDecoder().push(frame);
  const msg = set.decodeFrame(decoded!);
  assert.equal(msg.type, "Heartbeat");
  assert.deepEqual(msg.message, { term: 1, from: 2, to: 3, commit: 4 });
  assert.throws(
    () => set.decodeFrame({ type: 99, flags: 0, payload: new Uint8Array() }),
    (e) => isCodecError(e, "unknown_type"),
  );
  assert.throws(() => defineMessageSet([Heartbeat, Heartbeat]), /duplicate/);
});

Deno.test("the fingerprint ignores definition order and sees every schema change", () => {
  const a = defineMessageSet([Heartbeat, AppendEntries]).fingerprint;
  const b = defineMessageSet([AppendEntries, Heartbeat]).fingerprint;
  assert.equal(a, b);
  const base = z.object({ term: z.number(), from: z.number() });
  const variants = [
    z.object({ term: z.number(), from: z.number() }),
    z.object({ from: z.number(), term: z.number() }), // field order
    z.object({ term: z.number(), sender: z.number() }), // field name
    z.object({ term: z.number(), from: z.string() }), // field type
    z.object({ term: z.number(), from: z.number().int() }), // a check
    z.object({ term: z.number(), from: z.number().optional() }),
    z.object({ term: z.number(), from: z.number(), extra: z.boolean() }),
  ];
  const prints = variants.map((s) =>
    defineMessageSet([defineMessage("M", s)]).fingerprint
  );
  assert.equal(
    prints[0],
    defineMessageSet([defineMessage("M", base)]).fingerprint,
  );
  assert.equal(new Set(prints).size, prints.length);
  // Renaming the message changes it too.
  assert.notEqual(
    defineMessageSet([defineMessage("N", base)]).fingerprint,
    prints[0],
  );
});

Deno.test("optional nested structures and nullable fields keep their meaning", () => {
  const M = defineMessage(
    "M",
    z.object({
      a: z.object({ x: z.number() }).optional(),
      b: z.object({ y: z.string() }).nullable(),
      c: z.array(z.object({ z: z.boolean().optional() })),
      d: z.record(z.string(), z.number()),
      e: z.discriminatedUnion("kind", [
        z.object({ kind: z.literal("p"), v: z.number() }),
        z.object({ kind: z.literal("q"), w: z.string() }),
      ]),
    }),
  );
  const values: z.output<typeof M.schema>[] = [
    { b: null, c: [], d: {}, e: { kind: "p", v: 1 } },
    {
      a: { x: 1 },
      b: { y: "y" },
      c: [{}, { z: true }],
      d: { k: 1, "weird key": 2 },
      e: { kind: "q", w: "w" },
    },
  ];
  for (const v of values) assert.deepEqual(M.decode(M.encode(v)), v);
});

Deno.test("decoded byte fields do not alias the input buffer", () => {
  const input = AppendEntries.encode({
    term: 1,
    from: 1,
    to: 2,
    prevIndex: 0,
    prevTerm: 0,
    commit: 0,
    entries: [{ term: 1, index: 1, data: new Uint8Array([1, 2, 3]) }],
  });
  const decoded = AppendEntries.decode(input);
  input.fill(0);
  assert.deepEqual([...decoded.entries[0]!.data], [1, 2, 3]);
  assert.equal(decoded.entries[0]!.data.constructor, Uint8Array);
});
