import assert from "node:assert/strict";
import fc from "fast-check";
import { isCodecError } from "./codec_error.ts";
import { crc32c } from "./crc32c.ts";
import {
  ENVELOPE_HEADER_BYTES,
  envelopeHeader,
  openEnvelope,
  sealEnvelope,
} from "./file_envelope.ts";

Deno.test("an envelope round-trips its payload and version", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 5000 }),
      fc.integer({ min: 0, max: 0xffff }),
      (p, v) => {
        const sealed = sealEnvelope("TEST", v, p);
        const opened = openEnvelope(sealed, "TEST", [v]);
        assert.equal(opened.version, v);
        assert.deepEqual(opened.payload, p);
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("a streamed envelope (header, payload, running CRC) opens like a sealed one", () => {
  const payload = new TextEncoder().encode("streamed in pieces");
  const header = envelopeHeader("SNAP", 1, payload.length);
  let crc = crc32c(header);
  crc = crc32c(payload.subarray(0, 5), crc);
  crc = crc32c(payload.subarray(5), crc);
  const trailer = new Uint8Array(4);
  new DataView(trailer.buffer).setUint32(0, crc, true);
  const file = new Uint8Array([...header, ...payload, ...trailer]);
  assert.deepEqual(file, sealEnvelope("SNAP", 1, payload));
});

Deno.test("torn, foreign, newer and corrupted files are told apart", () => {
  const sealed = sealEnvelope("SNAP", 2, new Uint8Array(64).fill(7));
  for (let cut = 0; cut < sealed.length; cut++) {
    assert.throws(
      () => openEnvelope(sealed.subarray(0, cut), "SNAP", [2]),
      (e) =>
        isCodecError(e, "truncated") || isCodecError(e, "checksum_mismatch"),
      `cut at ${cut}`,
    );
  }
  assert.throws(
    () => openEnvelope(sealed, "VOLM", [2]),
    (e) => isCodecError(e, "bad_magic"),
  );
  assert.throws(
    () => openEnvelope(sealed, "SNAP", [1]),
    (e) =>
      isCodecError(e, "unsupported_version") && /version 2/.test(e.message),
  );
  for (let i = ENVELOPE_HEADER_BYTES; i < sealed.length; i++) {
    const flipped = sealed.slice();
    flipped[i] = flipped[i]! ^ 1;
    assert.throws(
      () => openEnvelope(flipped, "SNAP", [2]),
      (e) => isCodecError(e, "checksum_mismatch"),
    );
  }
  const extra = new Uint8Array([...sealed, 0]);
  assert.throws(
    () => openEnvelope(extra, "SNAP", [2]),
    (e) => isCodecError(e, "checksum_mismatch"),
  );
});
