import assert from "node:assert/strict";
import { GfsClient, startCluster } from "@strata/gfs";
import { openGfsStore } from "./open_gfs_store.ts";
import { checkAcknowledged, spawnWriter, until } from "./_writer_process.ts";

const enc = new TextEncoder();

Deno.test({
  name:
    "kill -9 of a chunkserver, then of the tablet server, under writes: a new server recovers every acknowledged write from GFS",
  // STRATA_LONG only: the tablet servers log through their server log now
  // (server_log_test.ts; tables_restart_test.ts kills a chunkserver under
  // it), not through this per-tablet log.
  ignore: Deno.env.get("STRATA_LONG") !== "1",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dataDir = await Deno.makeTempDir({ prefix: "tables-gfs-kill-" });
    const cluster = await startCluster({
      dataDir,
      chunkservers: 4,
      master: { chunkBytes: 256 * 1024, tickMs: 200, deadAfterMs: 3000 },
      chunkserver: () => ({ heartbeatMs: 200 }),
    });
    const token = cluster.secrets?.tokens.write;
    const dir = "/tablets/killed";
    let writer: ReturnType<typeof spawnWriter> | null = null;
    try {
      writer = spawnWriter(cluster.master.url, dir, token);
      const w = writer;
      await until("writer ready", () => w.ready, 30_000);
      await until("200 writes", () => w.total >= 200, 30_000);
      // Kill a replica of the log file being appended to.
      const gfs = new GfsClient(cluster.master.url, { token });
      const logs = (await gfs.ls(`${dir}/slog/`)).map((f) => f.path).sort();
      const loc = await gfs.locate(logs.at(-1)!);
      const replicas = loc.chunks.at(-1)!.replicas;
      const victim = cluster.chunkservers.find((s) =>
        replicas.includes(s.url)
      )!;
      await victim.stop(true);
      const before = w.total;
      await until(
        "200 writes after the chunkserver kill",
        () => w.total >= before + 200,
        60_000,
      );
      await w.kill();
      const acked = [...w.acked];
      console.log(
        `${before} writes acknowledged before the chunkserver kill, ${
          w.total - before
        } after, then the writer was killed`,
      );

      // A new server takes the tablet over (fresh client, nothing cached).
      const next = await openGfsStore(
        new GfsClient(cluster.master.url, { token }),
        dir,
      );
      try {
        assert.equal(next.fence.epoch, 2);
        await checkAcknowledged(next.store, acked);
        await next.store.put(enc.encode("after"), enc.encode("recovery"));
      } finally {
        await next.store.close();
      }
    } finally {
      await writer?.kill();
      await cluster.stop();
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    }
  },
});
