import assert from "node:assert/strict";
import { GfsClient } from "./client/client.ts";
import { isGfsError } from "./shared/gfs_error.ts";
import { pattern, startTestCell, until } from "./_test_support.ts";

const CHUNK = 256 * 1024;

Deno.test({
  name:
    "positioned reads: random ranges across chunk boundaries match the file, survive a lost replica, and come from cached locations",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    const { master, servers, stop, secrets } = await startTestCell(dir, {
      chunkBytes: CHUNK,
      replication: 3,
      servers: 3,
    });
    try {
      await until("3 chunkservers registered", async () => {
        const r = await fetch(`${master.url}/v1/chunkservers`, {
          headers: { authorization: `Bearer ${secrets.tokens.read}` },
        });
        const b = await r.json() as { chunkservers: unknown[] };
        return b.chunkservers.length === 3;
      }, 30_000);
      const gfs = new GfsClient(master.url, { token: secrets.tokens.write });
      const data = pattern(4 * CHUNK + 1234, 5);
      await gfs.upload("/sst", data);

      let seed = 1;
      const rand = (n: number) => {
        seed = (seed * 1103515245 + 12345) >>> 0;
        return seed % n;
      };
      const check = async (reads: number) => {
        for (let i = 0; i < reads; i++) {
          const length = 1 + rand(70_000);
          const offset = rand(data.length - length + 1);
          const got = await gfs.pread("/sst", offset, length);
          assert.deepEqual(
            got,
            data.subarray(offset, offset + length),
            `pread(${offset}, ${length})`,
          );
        }
      };
      await check(150);
      // Exactly across a chunk boundary, the last byte, and nothing.
      assert.deepEqual(
        await gfs.pread("/sst", CHUNK - 10, 20),
        data.subarray(CHUNK - 10, CHUNK + 10),
      );
      assert.deepEqual(
        await gfs.pread("/sst", data.length - 1, 1),
        data.subarray(data.length - 1),
      );
      assert.equal((await gfs.pread("/sst", 5, 0)).length, 0);
      await assert.rejects(
        gfs.pread("/sst", data.length - 5, 10),
        (e) => isGfsError(e, "range_not_satisfiable"),
      );
      await assert.rejects(
        gfs.pread("/nope", 0, 1),
        (e) => isGfsError(e, "not_found"),
      );

      // An append file grows past the cached length: the read refreshes.
      const rec = new TextEncoder().encode("first record");
      await gfs.append("/log", rec);
      const head = await gfs.pread("/log", 0, 12);
      assert.equal(head.length, 12);
      const { offset } = await gfs.append("/log", rec);
      assert.ok(offset > 0);
      assert.equal((await gfs.pread("/log", offset, 12)).length, 12);

      // A replica gone: reads move on to the others.
      await servers[0]!.close();
      await check(40);

      // The master gone: locations come from the cache.
      await master.close();
      await check(40);
    } finally {
      await stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
