import assert from "node:assert/strict";
import { isGfsError } from "./gfs_error.ts";
import {
  bulkProof,
  BulkRequestSchema,
  type ByteConn,
  encodeHeader,
  proofsEqual,
  ReadAhead,
  readExact,
  readHeader,
} from "./bulk_protocol.ts";

/** A connection that yields `bytes` in reads of at most `step` bytes. */
function source(bytes: Uint8Array, step = 3): ByteConn {
  let at = 0;
  return {
    read(p) {
      if (at >= bytes.length) return Promise.resolve(null);
      const n = Math.min(step, p.length, bytes.length - at);
      p.set(bytes.subarray(at, at + n));
      at += n;
      return Promise.resolve(n);
    },
    write: (p) => Promise.resolve(p.length),
  };
}

Deno.test("bulk protocol: headers round-trip across short reads; bad ones are bad_request", async () => {
  const req = {
    op: "write",
    handle: 7,
    version: 2,
    offset: 65536,
    length: 10,
    chain: ["http://127.0.0.1:1234"],
  };
  const wire = new Uint8Array([
    ...encodeHeader(req),
    ...encodeHeader({
      op: "read",
      handle: 1,
      version: null,
      offset: 0,
      length: 4,
    }),
  ]);
  const c = source(wire);
  assert.deepEqual(await readHeader(c, BulkRequestSchema), req);
  assert.equal((await readHeader(c, BulkRequestSchema))?.op, "read");
  assert.equal(await readHeader(c, BulkRequestSchema), null, "clean end");
  const bad = async (bytes: Uint8Array) =>
    await assert.rejects(
      () => readHeader(source(bytes), BulkRequestSchema),
      (e) => isGfsError(e, "bad_request"),
    );
  await bad(new Uint8Array([0, 0, 0, 2, 0x7b, 0x7b])); // "{{"
  await bad(encodeHeader({ op: "erase", handle: 1 }));
  await bad(encodeHeader({ ...req, extra: 1 })); // strict
  await bad(encodeHeader({ ...req, handle: -1 }));
  await bad(new Uint8Array([0xff, 0xff, 0xff, 0xff]));
  // Cut part way: unavailable, not a hang or a crash.
  await assert.rejects(
    () =>
      readHeader(source(encodeHeader(req).subarray(0, 9)), BulkRequestSchema),
    (e) => isGfsError(e, "unavailable"),
  );
  const into = new Uint8Array(5);
  await assert.rejects(
    () => readExact(source(new Uint8Array(3)), into),
    (e) => isGfsError(e, "unavailable"),
  );
});

Deno.test("bulk protocol: a proof binds the secret, the role and both nonces", () => {
  const a = crypto.getRandomValues(new Uint8Array(32));
  const b = crypto.getRandomValues(new Uint8Array(32));
  const p = bulkProof("secret", "client", a, b);
  assert.ok(proofsEqual(p, bulkProof("secret", "client", a, b)));
  assert.ok(!proofsEqual(p, bulkProof("other", "client", a, b)));
  assert.ok(!proofsEqual(p, bulkProof("secret", "server", a, b)));
  assert.ok(!proofsEqual(p, bulkProof("secret", "client", b, a)));
  assert.ok(!proofsEqual(p, p.subarray(1)));
});

Deno.test("bulk protocol: headers read through a ReadAhead, whole or cut, leave the bytes after them intact", async () => {
  const req = { op: "read", handle: 3, version: 1, offset: 8, length: 5 };
  const body = new Uint8Array([9, 8, 7, 6, 5]);
  const wire = new Uint8Array([
    ...encodeHeader(req),
    ...body,
    ...encodeHeader({ ...req, handle: 4 }),
  ]);
  // One socket read holds everything (the usual case), or 3 bytes at a time.
  for (const step of [wire.length, 3]) {
    const c = new ReadAhead(source(wire, step), 1024);
    assert.deepEqual(await readHeader(c, BulkRequestSchema), req);
    const got = new Uint8Array(body.length);
    assert.ok(await readExact(c, got));
    assert.deepEqual(got, body);
    assert.equal((await readHeader(c, BulkRequestSchema))?.handle, 4);
    assert.equal(await readHeader(c, BulkRequestSchema), null, "clean end");
  }
  // Bad headers are refused on either path.
  for (const step of [1 << 20, 3]) {
    const bad = async (bytes: Uint8Array) =>
      await assert.rejects(
        () =>
          readHeader(
            new ReadAhead(source(bytes, step), 1024),
            BulkRequestSchema,
          ),
        (e) => isGfsError(e, "bad_request"),
      );
    await bad(encodeHeader({ ...req, extra: 1 }));
    await bad(new Uint8Array([0, 0, 0, 2, 0x7b, 0x7b]));
    await bad(new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
    await assert.rejects(
      () =>
        readHeader(
          new ReadAhead(source(encodeHeader(req).subarray(0, 9), step), 1024),
          BulkRequestSchema,
        ),
      (e) => isGfsError(e, "unavailable"),
    );
  }
});
