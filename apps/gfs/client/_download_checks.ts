import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { type GfsClient, READ_PIECE_BYTES } from "./client.ts";
import { isGfsError } from "../shared/gfs_error.ts";
import { pattern } from "../_test_support.ts";

const CHUNK = 1 << 20;

/** Reads a download through a BYOB reader with views of `viewBytes`. */
async function byob(
  stream: ReadableStream<Uint8Array>,
  viewBytes: number,
): Promise<Uint8Array> {
  const reader = stream.getReader({ mode: "byob" });
  const parts: Uint8Array[] = [];
  let buf = new Uint8Array(viewBytes);
  for (;;) {
    const { done, value } = await reader.read(buf);
    if (done) break;
    parts.push(value.slice());
    buf = new Uint8Array(value.buffer);
  }
  return new Uint8Array(Buffer.concat(parts));
}

/**
 * Downloads into the caller's memory (BYOB stream, `readInto`, `readAll`)
 * return exactly the file's bytes, over the bulk port and over HTTP; run as
 * steps of a test that owns a cell with 1 MiB chunks (`bulk_port_test.ts`),
 * so the cell starts once.
 */
export async function downloadChecks(
  t: Deno.TestContext,
  clients: { bulk: GfsClient; http: GfsClient },
  bulkCalls: () => Promise<number>,
): Promise<void> {
  // Across two chunk boundaries and not a multiple of anything.
  const data = pattern(2 * CHUNK + 300_007, 3);
  await clients.bulk.upload("/d/a", data);
  for (const [name, client] of Object.entries(clients)) {
    await t.step(`${name}: a BYOB reader, odd view sizes`, async () => {
      for (const view of [65_537, READ_PIECE_BYTES + 3]) {
        const d = await client.download("/d/a");
        assert.equal(d.length, data.length);
        assert.deepEqual(await byob(d.stream, view), data);
      }
      // One byte per read (slow): a range of the file only.
      const r = await client.download("/d/a", { offset: 5, length: 7000 });
      assert.deepEqual(await byob(r.stream, 1), data.subarray(5, 7005));
    });
    await t.step(`${name}: a default reader and a range`, async () => {
      const d = await client.download("/d/a", {
        offset: CHUNK - 10,
        length: CHUNK + 20,
      });
      const got = new Uint8Array(
        await new Response(d.stream).arrayBuffer(),
      );
      assert.deepEqual(got, data.subarray(CHUNK - 10, 2 * CHUNK + 10));
    });
    await t.step(`${name}: readInto and readAll`, async () => {
      const into = new Uint8Array(data.length + 100).fill(0xee);
      assert.equal(await client.readInto("/d/a", into), data.length);
      assert.deepEqual(into.subarray(0, data.length), data);
      // What the file does not fill stays as it was.
      assert.ok(into.subarray(data.length).every((b) => b === 0xee));
      const small = new Uint8Array(1000);
      assert.equal(
        await client.readInto("/d/a", small, CHUNK - 500),
        1000,
      );
      assert.deepEqual(small, data.subarray(CHUNK - 500, CHUNK + 500));
      assert.equal(
        await client.readInto("/d/a", small, data.length),
        0,
      );
      await assert.rejects(
        client.readInto("/d/a", small, data.length + 1),
        (e) => isGfsError(e, "range_not_satisfiable"),
      );
      for (const bad of [-1, 0.5, NaN]) {
        await assert.rejects(
          client.readInto("/d/a", small, bad),
          (e) => isGfsError(e, "bad_request"),
        );
      }
      assert.deepEqual(await client.readAll("/d/a"), data);
      assert.deepEqual(
        await client.readAll("/d/a", { offset: 7, length: 2 * CHUNK }),
        data.subarray(7, 7 + 2 * CHUNK),
      );
    });
  }
  await t.step(
    "concurrent and cancelled downloads share the piece buffers safely",
    async () => {
      const other = pattern(CHUNK + 4321, 5);
      await clients.bulk.upload("/d/b", other);
      const c = clients.bulk;
      // A download cancelled with reads in flight, then two at once.
      const cut = (await c.download("/d/a")).stream.getReader({
        mode: "byob",
      });
      await cut.read(new Uint8Array(1000));
      await cut.cancel();
      const [a, b] = await Promise.all([
        c.download("/d/a").then((d) => byob(d.stream, 300_000)),
        c.download("/d/b").then((d) => byob(d.stream, 77_777)),
      ]);
      assert.deepEqual(a, data);
      assert.deepEqual(b, other);
      const [a2, b2] = await Promise.all([
        c.readAll("/d/a"),
        c.download("/d/b").then(async (d) =>
          new Uint8Array(await new Response(d.stream).arrayBuffer())
        ),
      ]);
      assert.deepEqual(a2, data);
      assert.deepEqual(b2, other);
    },
  );
  await t.step("a path written again reads as its new bytes", async () => {
    assert.deepEqual(await clients.bulk.readAll("/d/a"), data);
    await clients.http.remove("/d/a");
    const again = pattern(CHUNK + 11, 9);
    await clients.http.upload("/d/a", again);
    assert.deepEqual(await clients.bulk.readAll("/d/a"), again);
    const d = await clients.bulk.download("/d/a");
    assert.deepEqual(await byob(d.stream, 4096), again);
  });
  await t.step(
    "through a warm location cache: a path deleted and written again (same length) reads as its new bytes, a deleted one is not_found",
    async () => {
      // The writer's cache holds the locations it wrote; a read starts from
      // them while the master is asked (one bulk read, confirmed).
      const n = CHUNK - 5; // one chunk, one piece
      await clients.bulk.upload("/d/w", pattern(n, 20));
      let before = await bulkCalls();
      // Byte comparisons, not deepEqual: its diff of two 1 MiB arrays on
      // failure takes gigabytes.
      const same = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0;
      assert.ok(same(await clients.bulk.readAll("/d/w"), pattern(n, 20)));
      assert.equal(await bulkCalls() - before, 1, "one bulk read");
      const reads: [string, () => Promise<Uint8Array>][] = [
        ["readAll", () => clients.bulk.readAll("/d/w")],
        [
          "download",
          async () => byob((await clients.bulk.download("/d/w")).stream, 4096),
        ],
        ["readInto", async () => {
          const out = new Uint8Array(n);
          assert.equal(await clients.bulk.readInto("/d/w", out), n);
          return out;
        }],
      ];
      let seed = 31; // odd: pattern() makes a seed odd, so 20 and 21 match
      for (const [name, read] of reads) {
        // Same length, so the cached plan fits: only the master's answer
        // (another file, other chunk handles) tells the old chunks apart,
        // and they are still on the chunkservers (the trash delay).
        await clients.http.remove("/d/w");
        const again = pattern(n, seed += 2);
        await clients.http.upload("/d/w", again);
        before = await bulkCalls();
        assert.ok(same(await read(), again), `${name}: the new bytes`);
        // The speculative read of the old chunk, dropped, then the new one.
        assert.equal(await bulkCalls() - before, 2, `${name}: two bulk reads`);
      }
      await clients.http.remove("/d/w");
      for (const [name, read] of reads) {
        await assert.rejects(
          read(),
          (e) => isGfsError(e, "not_found"),
          `${name} of a deleted path`,
        );
      }
    },
  );
}
