import assert from "node:assert/strict";
import { GfsClient } from "./client/client.ts";
import { startCluster } from "./process_cluster.ts";
import { fetchAs, pattern, until } from "./_test_support.ts";

/** fetch with the cluster's admin token (set once the cluster runs). */
let api: typeof fetch = fetch;

const CHUNK = 256 * 1024;

Deno.test({
  name:
    "kill -9 of the master mid-workload: the supervising launcher restarts it, no acknowledged file is lost and no pending one shown",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "gfs-master-" });
    const log: string[] = [];
    const cluster = await startCluster({
      // As `deno task gfs` runs it: an exit nobody asked for is restarted.
      supervise: { delayMs: 200, log: (l) => log.push(l) },
      dataDir: dir,
      chunkservers: 3,
      master: {
        chunkBytes: CHUNK,
        tickMs: 200,
        deadAfterMs: 3000,
        checkpointEvery: 25,
      },
      chunkserver: () => ({ heartbeatMs: 200 }),
    });
    api = fetchAs(cluster.secrets!.tokens.admin);
    const client = new GfsClient(cluster.master.url, {
      token: cluster.secrets!.tokens.admin,
    });
    try {
      const acked = new Map<string, Uint8Array>();
      let stop = false;
      let attempts = 0;
      const workers = Array.from({ length: 3 }, async (_, w) => {
        for (let i = 0; !stop; i++) {
          const path = `/w${w}/f${i}`;
          const data = pattern(CHUNK * (i % 3) + 1000 * (w + 1), w * 1000 + i);
          attempts++;
          try {
            await client.upload(path, data);
            acked.set(path, data);
          } catch {
            // the master was down: this upload is not acknowledged
            await new Promise((r) => setTimeout(r, 100));
          }
        }
      });
      await until(
        "a few acknowledged uploads",
        () => Promise.resolve(acked.size >= 6),
      );
      // kill -9 from outside the launcher: it restarts the master on the
      // same port and data.
      const killed = cluster.master.process;
      Deno.kill(killed.pid, "SIGKILL");
      await until(
        "the launcher restarted the master",
        () => Promise.resolve(log.includes("gfs master 1 restarted")),
        60_000,
      );
      assert.equal(
        log[0],
        "gfs master 1 was killed by SIGKILL; restarting it in 200 ms",
      );
      assert.notEqual(cluster.master.process, killed);
      const before = acked.size;
      await until(
        "uploads acknowledged after the restart",
        () => Promise.resolve(acked.size >= before + 6),
        60_000,
      );
      stop = true;
      await Promise.all(workers);
      assert.ok(attempts > acked.size || attempts === acked.size);
      // Every acknowledged file is there with its bytes.
      for (const [path, data] of acked) {
        const got = await client.readAll(path);
        assert.equal(got.length, data.length, path);
        assert.ok(got.every((b, i) => b === data[i]), path);
      }
      // Only completed files are listed, each with the bytes its writer meant.
      const listed = await client.ls("/");
      for (const f of listed) {
        const [, w, name] = /^\/w(\d)\/f(\d+)$/.exec(f.path) ?? [];
        assert.ok(w !== undefined, f.path);
        const i = Number(name);
        const expected = pattern(
          CHUNK * (i % 3) + 1000 * (Number(w) + 1),
          Number(w) * 1000 + i,
        );
        assert.equal(f.length, expected.length, f.path);
      }
      for (const path of acked.keys()) {
        assert.ok(listed.some((f) => f.path === path), `${path} listed`);
      }
      const metrics = await (await api(`${cluster.master.url}/metrics`))
        .text();
      assert.match(metrics, /gfs_master_oplog_applied_index [1-9]/);
    } finally {
      await cluster.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
