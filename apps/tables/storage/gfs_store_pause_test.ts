import assert from "node:assert/strict";
import { GfsClient, startCluster } from "@strata/gfs";
import { openGfsStore } from "./open_gfs_store.ts";
import { checkAcknowledged, spawnWriter, until } from "./_writer_process.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

Deno.test({
  name:
    "a tablet server stopped (SIGSTOP) while another takes its tablet over acknowledges nothing more when resumed",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dataDir = await Deno.makeTempDir({ prefix: "tables-gfs-stop-" });
    const cluster = await startCluster({
      dataDir,
      chunkservers: 3,
      master: { chunkBytes: 256 * 1024, tickMs: 200 },
      chunkserver: () => ({ heartbeatMs: 200 }),
    });
    const token = cluster.secrets?.tokens.write;
    const dir = "/tablets/stopped";
    let writer: ReturnType<typeof spawnWriter> | null = null;
    try {
      writer = spawnWriter(cluster.master.url, dir, token);
      const w = writer;
      await until("writer ready", () => w.ready, 30_000);
      await until("200 writes", () => w.total >= 200, 30_000);
      w.signal("SIGSTOP");
      const b = await openGfsStore(
        new GfsClient(cluster.master.url, { token }),
        dir,
        {
          owner: "b",
        },
      );
      try {
        w.signal("SIGCONT");
        // Its next appends land in its log, fail the fence check and the
        // writer process dies of the FencedError. Or, when it was stopped
        // while flushing, b's open swept the table it was writing (named by
        // no manifest), so its flush fails to open it, the store fails and
        // its next write throws that: the takeover stops it either way.
        const status = await w.status;
        assert.equal(status.success, false);
        await w.kill();
        assert.match(
          w.stderr,
          /FencedError|superseded|a background flush or compaction failed: GfsError: \S+\.sst not found/,
        );
        const acked = [...w.acked];
        console.log(
          `${w.total} writes acknowledged by the stopped server in all`,
        );
        // Whatever it acknowledged (even printed after SIGCONT) was durable
        // before b's claim, so b replayed it.
        await checkAcknowledged(b.store, acked);
        await b.store.put(enc.encode("b"), enc.encode("serves"));
      } finally {
        await b.store.close();
      }
      const c = await openGfsStore(
        new GfsClient(cluster.master.url, { token }),
        dir,
      );
      try {
        assert.equal(c.fence.epoch, 3);
        assert.equal(
          dec.decode((await c.store.get(enc.encode("b")))!),
          "serves",
        );
        await checkAcknowledged(c.store, [...w.acked]);
      } finally {
        await c.store.close();
      }
    } finally {
      await writer?.kill();
      await cluster.stop();
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    }
  },
});
