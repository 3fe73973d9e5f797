import assert from "node:assert/strict";
import { FrameDecoder, isCodecError } from "@strata/codec";
import fc from "fast-check";
import {
  AppendRecord,
  ApplyBytes,
  BytesApplied,
  ChunkBytes,
  dataMessages,
  DataRefused,
  ReadChunk,
  RecordAppended,
  refusalError,
} from "./data_protocol.ts";

const bytes = fc.uint8Array({ maxLength: 4096 }).map((b) =>
  new Uint8Array(b) as Uint8Array<ArrayBuffer>
);
const count = fc.nat({ max: Number.MAX_SAFE_INTEGER });
const handle = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER });

// Every kind with arbitrary valid contents, as the set encodes it.
const message = fc.oneof(
  fc.record({
    handle,
    version: fc.option(fc.integer({ min: 1, max: 2 ** 40 }), { nil: null }),
    offset: count,
    length: count,
  }).map((m) => ({ type: ReadChunk, m: { ...m } })),
  fc.record({ bytes }).map((m) => ({ type: ChunkBytes, m: { ...m } })),
  fc.record({
    handle,
    version: fc.integer({ min: 1, max: 2 ** 40 }),
    secondaries: fc.array(
      fc.integer({ min: 1, max: 65535 }).map((p) => `http://127.0.0.1:${p}`),
      { maxLength: 15 },
    ),
    data: bytes,
  }).map((m) => ({ type: AppendRecord, m: { ...m } })),
  fc.record({ offset: count }).map((m) => ({
    type: RecordAppended,
    m: { ...m },
  })),
  fc.record({
    code: fc.string({ maxLength: 64 }),
    message: fc.string({ maxLength: 4096 }),
  }).map((m) => ({ type: DataRefused, m: { ...m } })),
  fc.record({
    handle,
    version: fc.integer({ min: 1, max: 2 ** 40 }),
    offset: count,
    seq: fc.option(fc.integer({ min: 1, max: 2 ** 40 }), { nil: null }),
    data: bytes,
  }).map((m) => ({ type: ApplyBytes, m: { ...m } })),
  fc.record({ length: count }).map((m) => ({
    type: BytesApplied,
    m: { ...m },
  })),
);

Deno.test("data port messages: every kind survives a frame round trip unchanged", () => {
  fc.assert(
    fc.property(message, ({ type, m }) => {
      // deno-lint-ignore no-explicit-any
      const frame = dataMessages.encodeFrame(type as any, m as any);
      const [decoded] = new FrameDecoder().push(frame);
      const got = dataMessages.decodeFrame(decoded!);
      assert.equal(got.type, type.name);
      assert.deepEqual(got.message, m);
    }),
    { numRuns: 300 },
  );
});

Deno.test("data port messages: a message that breaks its schema does not decode", () => {
  // A ReadChunk whose handle is 0 (handles start at 1), built by hand.
  const bad = dataMessages.encodeFrame(ReadChunk, {
    handle: 1,
    version: null,
    offset: 0,
    length: 1,
  });
  const good = new FrameDecoder().push(bad)[0]!;
  const forged = ReadChunk.encode({
    handle: 1,
    version: null,
    offset: 0,
    length: 1,
  });
  // Positional CBOR: [handle, version, offset, length]; 0x01 → 0x00 in place.
  const at = forged.indexOf(1);
  forged[at] = 0;
  assert.throws(
    () => dataMessages.decodeFrame({ ...good, payload: forged }),
    (e) => isCodecError(e),
  );
});

Deno.test("data port refusals become the GfsError they name; unknown codes read as unavailable", () => {
  const e = refusalError({ code: "chunk_full", message: "full" });
  assert.equal(e.code, "chunk_full");
  assert.equal(e.message, "full");
  assert.equal(
    refusalError({ code: "weird", message: "x" }).code,
    "unavailable",
  );
});
