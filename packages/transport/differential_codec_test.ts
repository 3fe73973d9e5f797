import assert from "node:assert/strict";
import fc from "fast-check";
import { z } from "zod";
import { defineMessage } from "@strata/codec";
import {
  DifferentialDecoder,
  DifferentialEncoder,
} from "./differential_codec.ts";
import { isTransportError } from "./transport_error.ts";
import { cloneWire } from "./wire_cbor.ts";

/** deepEqual that sees a Buffer (what cbor-x decodes bytes to) as a Uint8Array. */
function same(actual: unknown, expected: unknown): void {
  assert.deepEqual(cloneWire(actual), cloneWire(expected));
}

const Heartbeat = defineMessage(
  "Heartbeat",
  z.object({
    term: z.number().int(),
    leader: z.string(),
    commit: z.number().int(),
    peers: z.array(z.string()),
    meta: z.object({ zone: z.string(), tags: z.array(z.number()) }),
    note: z.string().optional(),
    blob: z.instanceof(Uint8Array),
  }),
);
type Hb = z.output<typeof Heartbeat.schema>;

const hb: Hb = {
  term: 7,
  leader: "node-1",
  commit: 100,
  peers: ["node-2", "node-3"],
  meta: { zone: "eu", tags: [1, 2] },
  blob: new Uint8Array([1, 2, 3]),
};

function roundTrip(messages: Hb[]): { out: Hb[]; bytes: number[] } {
  const enc = new DifferentialEncoder();
  const dec = new DifferentialDecoder();
  const out: Hb[] = [];
  const bytes: number[] = [];
  for (const m of messages) {
    const body = enc.encode(1, Heartbeat, m);
    body.commit();
    bytes.push(body.bytes.length);
    out.push(dec.decode(1, Heartbeat, body.bytes, body.differential));
  }
  return { out, bytes };
}

Deno.test("an unchanged heartbeat travels as a diff of one byte", () => {
  const { out, bytes } = roundTrip([hb, hb, { ...hb, commit: 101 }]);
  same(out, [hb, hb, { ...hb, commit: 101 }]);
  assert.equal(bytes[1], 1);
  assert.ok(bytes[2]! < 6, `one changed field costs ${bytes[2]} bytes`);
  assert.ok(bytes[0]! > 20);
});

Deno.test("nested objects and arrays change as whole fields", () => {
  const next = { ...hb, meta: { zone: "eu", tags: [1, 2, 3] } };
  const { out } = roundTrip([hb, next, hb]);
  same(out, [hb, next, hb]);
});

Deno.test("mutating a sent or received message does not corrupt later ones", () => {
  const enc = new DifferentialEncoder();
  const dec = new DifferentialDecoder();
  const sent = structuredClone(hb);
  const a = enc.encode(1, Heartbeat, sent);
  a.commit();
  const got = dec.decode(1, Heartbeat, a.bytes, a.differential);
  sent.peers.push("node-9");
  sent.blob[0] = 99;
  got.peers.push("node-8");
  got.meta.tags.push(5);
  const b = enc.encode(1, Heartbeat, sent);
  b.commit();
  same(
    dec.decode(1, Heartbeat, b.bytes, b.differential),
    sent,
  );
});

Deno.test("a diff without a base is a protocol error, not a wrong message", () => {
  const enc = new DifferentialEncoder();
  enc.encode(1, Heartbeat, hb).commit();
  const diff = enc.encode(1, Heartbeat, { ...hb, term: 8 });
  assert.equal(diff.differential, true);
  const fresh = new DifferentialDecoder();
  assert.throws(
    () => fresh.decode(1, Heartbeat, diff.bytes, true),
    (e) => isTransportError(e, "protocol_error"),
  );
});

Deno.test("a diff of a kind with differential encoding off is rejected", () => {
  const enc = new DifferentialEncoder();
  const dec = new DifferentialDecoder({ enabled: () => false });
  const a = enc.encode(1, Heartbeat, hb);
  a.commit();
  dec.decode(1, Heartbeat, a.bytes, a.differential);
  const b = enc.encode(1, Heartbeat, hb);
  assert.throws(
    () => dec.decode(1, Heartbeat, b.bytes, b.differential),
    (e) => isTransportError(e, "protocol_error"),
  );
});

Deno.test("kinds turned off always travel whole", () => {
  const enc = new DifferentialEncoder({ enabled: (n) => n !== "Heartbeat" });
  enc.encode(1, Heartbeat, hb).commit();
  const again = enc.encode(1, Heartbeat, hb);
  assert.equal(again.differential, false);
  assert.deepEqual(again.bytes, Heartbeat.encode(hb));
});

Deno.test("an uncommitted encoding leaves the state as it was", () => {
  const enc = new DifferentialEncoder();
  const dec = new DifferentialDecoder();
  const a = enc.encode(1, Heartbeat, hb);
  a.commit();
  dec.decode(1, Heartbeat, a.bytes, false);
  enc.encode(1, Heartbeat, { ...hb, term: 99 }); // dropped: never committed
  const c = enc.encode(1, Heartbeat, { ...hb, commit: 5 });
  c.commit();
  same(dec.decode(1, Heartbeat, c.bytes, c.differential), {
    ...hb,
    commit: 5,
  });
});

Deno.test("corrupt diffs are typed errors and leave the base intact", () => {
  const enc = new DifferentialEncoder();
  const dec = new DifferentialDecoder();
  const a = enc.encode(1, Heartbeat, hb);
  a.commit();
  dec.decode(1, Heartbeat, a.bytes, false);
  const bad = [
    new Uint8Array([]), // ends inside the bitmap
    new Uint8Array([0x80, 0x81, 0x01]), // marks a field past the seventh
    new Uint8Array([1]), // bitmap marks one, no values follow
    new Uint8Array([1, 0x80]), // bitmap marks one, array carries none
    new Uint8Array([0, 0x81, 0x01]), // marks none, carries one
    new Uint8Array([1, 0xff]), // not CBOR
    new Uint8Array([1, 0x81, 0x63, 0x61, 0x62, 0x63]), // term: "abc"
  ];
  for (const bytes of bad) {
    assert.throws(
      () => dec.decode(1, Heartbeat, bytes, true),
      (e) =>
        isTransportError(e, "protocol_error") ||
        isTransportError(e, "frame_error"),
    );
  }
  const b = enc.encode(1, Heartbeat, { ...hb, leader: "x" });
  b.commit();
  same(dec.decode(1, Heartbeat, b.bytes, b.differential), {
    ...hb,
    leader: "x",
  });
});

const arbHb: fc.Arbitrary<Hb> = fc.record({
  term: fc.integer({ min: 0, max: 5 }),
  leader: fc.constantFrom("a", "b", "node-1"),
  commit: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.maxSafeInteger()),
  peers: fc.array(fc.constantFrom("x", "y", ""), { maxLength: 3 }),
  meta: fc.record({
    zone: fc.constantFrom("eu", "us"),
    tags: fc.array(
      fc.oneof(
        fc.double({ noNaN: true, noDefaultInfinity: true }),
        fc.integer(),
      ),
      { maxLength: 3 },
    ),
  }),
  note: fc.string(),
  blob: fc.uint8Array({ maxLength: 4 }),
}, { requiredKeys: ["term", "leader", "commit", "peers", "meta", "blob"] });

/** What the plain codec itself returns for `m` (CBOR has no -0 integer). */
const viaCodec = (m: Hb): Hb => Heartbeat.decode(Heartbeat.encode(m));

Deno.test("any sequence of messages round-trips exactly through encoder and decoder", () => {
  fc.assert(
    fc.property(fc.array(arbHb, { maxLength: 30 }), (messages) => {
      const { out } = roundTrip(messages);
      same(out, messages.map(viaCodec));
      // Byte-exact too: the decoded message re-encodes as the sent one.
      out.forEach((m, i) =>
        same(Heartbeat.encode(m), Heartbeat.encode(messages[i]!))
      );
    }),
    { numRuns: Deno.env.get("STRATA_LONG") === "1" ? 2000 : 200 },
  );
});

Deno.test("interleaved kinds keep separate bases", () => {
  const Vote = defineMessage(
    "Vote",
    z.object({ term: z.number(), granted: z.boolean() }),
  );
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          arbHb.map((m) => ({ kind: 1 as const, m })),
          fc.record({ term: fc.integer(), granted: fc.boolean() }).map((m) => ({
            kind: 2 as const,
            m,
          })),
        ),
        { maxLength: 30 },
      ),
      (seq) => {
        const enc = new DifferentialEncoder();
        const dec = new DifferentialDecoder();
        for (const item of seq) {
          if (item.kind === 1) {
            const b = enc.encode(1, Heartbeat, item.m);
            b.commit();
            same(
              dec.decode(1, Heartbeat, b.bytes, b.differential),
              viaCodec(item.m),
            );
          } else {
            const b = enc.encode(2, Vote, item.m);
            b.commit();
            same(
              dec.decode(2, Vote, b.bytes, b.differential),
              item.m,
            );
          }
        }
      },
    ),
    { numRuns: 100 },
  );
});

Deno.test("an owned body's byte strings are views of it; otherwise a copy the caller may reuse its buffer under", () => {
  for (const differential of [false, true]) {
    const enc = new DifferentialEncoder({ enabled: () => differential });
    const dec = new DifferentialDecoder({ enabled: () => differential });
    for (const [i, owned] of [false, true, false, true].entries()) {
      const blob = new Uint8Array(600).fill(i + 1);
      const body = enc.encode(1, Heartbeat, { ...hb, term: i, blob });
      body.commit();
      const bytes = body.bytes.slice();
      const m = dec.decode(1, Heartbeat, bytes, body.differential, owned);
      assert.deepEqual(new Uint8Array(m.blob), blob);
      assert.equal(m.blob.buffer === bytes.buffer, owned);
      bytes.fill(0xee);
      assert.equal(m.blob[0], owned ? 0xee : i + 1);
    }
  }
});
