import assert from "node:assert/strict";
import { GfsClient } from "./client/client.ts";
import { isGfsError } from "./shared/gfs_error.ts";
import { startTestCell, until } from "./_test_support.ts";

Deno.test({
  name:
    "exists answers, in one call, what stat finds for each path: complete files yes; missing and deleted ones no (their trash copy yes); bad paths 400",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    const { master, stop, secrets } = await startTestCell(dir, {
      chunkBytes: 256 * 1024,
      replication: 1,
      servers: 1,
    });
    try {
      await until("a chunkserver registered", async () => {
        const r = await fetch(`${master.url}/v1/chunkservers`, {
          headers: { authorization: `Bearer ${secrets.tokens.read}` },
        });
        const b = await r.json() as { chunkservers: unknown[] };
        return b.chunkservers.length === 1;
      }, 30_000);
      const gfs = new GfsClient(master.url, { token: secrets.tokens.write });
      await gfs.upload("/t/claims/0000000001", new Uint8Array([1]));
      await gfs.upload("/t/gone", new Uint8Array([2]));
      await gfs.append("/t/log", new Uint8Array([3]));
      const trash = await gfs.remove("/t/gone");
      const paths = [
        "/t/claims/0000000001",
        "/t/claims/0000000002",
        "/t/log",
        "/t/gone",
        trash,
        "/t/sealed",
      ];
      const stat = await Promise.all(
        paths.map((p) => gfs.stat(p).then(() => true, () => false)),
      );
      assert.deepEqual(stat, [true, false, true, false, true, false]);
      assert.deepEqual(await gfs.exists(paths), stat);
      // A read token is enough, as for stat.
      const reader = new GfsClient(master.url, { token: secrets.tokens.read });
      assert.deepEqual(await reader.exists(["/t/log"]), [true]);
      // The same answers over the http1 option (as tablet servers call it).
      const kept = new GfsClient(master.url, {
        token: secrets.tokens.read,
        http1: true,
      });
      assert.deepEqual(await kept.exists(paths), stat);

      for (
        const bad of [[], ["no-slash"], Array(257).fill("/t/log")] as string[][]
      ) {
        for (const c of [gfs, kept]) {
          await assert.rejects(
            c.exists(bad),
            (e) => isGfsError(e, "bad_request"),
            `exists(${JSON.stringify(bad).slice(0, 40)})`,
          );
        }
      }
      await kept.close();
      const anon = await fetch(`${master.url}/v1/exists`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ paths: ["/t/log"] }),
      });
      await anon.body?.cancel();
      assert.equal(anon.status, 401);
    } finally {
      await stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
