// Fuzz: random and mutated bytes into the frame decoder and message decode.
// Anything but a CodecError (another exception, a hang, a huge allocation)
// fails the test. `test:long` (STRATA_LONG=1) runs 20x more cases.
import assert from "node:assert/strict";
import fc from "fast-check";
import { CodecError } from "./codec_error.ts";
import { encodeFrame } from "./frame.ts";
import { FrameDecoder } from "./frame_decoder.ts";
import { defineMessageSet } from "./message.ts";
import {
  AppendEntries,
  Heartbeat,
  SearchTopN,
} from "../../fixtures/codec_messages.ts";

const LONG = Deno.env.get("STRATA_LONG") === "1";
const RUNS = LONG ? 100_000 : 5_000;
const set = defineMessageSet([AppendEntries, Heartbeat, SearchTopN]);

const seeds: Uint8Array[] = [
  set.encodeFrame(Heartbeat, { term: 3, from: 1, to: 2, commit: 9 }),
  set.encodeFrame(AppendEntries, {
    term: 3,
    from: 1,
    to: 2,
    prevIndex: 8,
    prevTerm: 3,
    commit: 9,
    entries: [{ term: 3, index: 9, data: new Uint8Array(40).fill(1) }],
  }),
  set.encodeFrame(SearchTopN, {
    shard: 1,
    took: 0.4,
    total: 2,
    hits: [{ id: "d1", score: 2.5, snippet: "<b>wing</b>" }],
  }),
];

/** Runs `fn`; any throw that is not a CodecError fails the property. */
function onlyCodecErrors(fn: () => void): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof CodecError)) {
      throw new Error(`non-CodecError escaped: ${e}`, { cause: e });
    }
  }
}

function decodeAll(bytes: Uint8Array): void {
  const decoder = new FrameDecoder({ maxFrameBytes: 1 << 20 });
  for (const frame of decoder.push(bytes)) set.decodeFrame(frame);
}

const mutated = fc.tuple(
  fc.constantFrom(...seeds),
  fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
    minLength: 1,
    maxLength: 6,
  }),
).map(([seed, edits]) => {
  const out = seed.slice();
  for (const [at, v] of edits) out[at % out.length] = v;
  return out;
});

Deno.test("random bytes into the frame decoder yield frames or a CodecError", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 512 }),
      (bytes) => onlyCodecErrors(() => decodeAll(bytes)),
    ),
    { numRuns: RUNS },
  );
});

Deno.test("mutated frames yield a CodecError or a valid message, never another error", () => {
  fc.assert(
    fc.property(mutated, (bytes) => onlyCodecErrors(() => decodeAll(bytes))),
    { numRuns: RUNS },
  );
});

Deno.test("random and mutated payloads in well-formed frames are rejected by decode", () => {
  const payloads = fc.oneof(
    fc.uint8Array({ maxLength: 256 }),
    mutated.map((f) => f.subarray(10, f.length - 4)),
  );
  fc.assert(
    fc.property(payloads, fc.integer({ min: 0, max: 4 }), (payload, type) => {
      onlyCodecErrors(() =>
        decodeAll(encodeFrame({ type, flags: 0, payload }))
      );
    }),
    { numRuns: RUNS },
  );
});

Deno.test("hostile CBOR headers cannot force huge allocations", () => {
  // Array, map, byte string and text string announcing 2^32-1 items.
  const hostile = [
    [0x9a, 0xff, 0xff, 0xff, 0xff],
    [0xba, 0xff, 0xff, 0xff, 0xff],
    [0x5a, 0xff, 0xff, 0xff, 0xff],
    [0x7a, 0xff, 0xff, 0xff, 0xff],
    [0x9b, 0, 0, 0, 1, 0, 0, 0, 0],
    // Deeply nested arrays.
    new Array(10_000).fill(0x81),
  ];
  for (const h of hostile) {
    const payload = Uint8Array.from(h);
    assert.throws(
      () => decodeAll(encodeFrame({ type: 2, flags: 0, payload })),
      (e) => e instanceof CodecError,
    );
  }
});
