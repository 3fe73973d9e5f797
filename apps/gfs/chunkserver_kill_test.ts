import assert from "node:assert/strict";
import { GfsClient } from "./client/client.ts";
import { startCluster } from "./process_cluster.ts";
import { fetchAs, pattern, until } from "./_test_support.ts";

/** fetch with the cluster's admin token (set once the cluster runs). */
let api: typeof fetch = fetch;

const CHUNK = 1 << 20;

Deno.test({
  name:
    "kill -9 of a chunkserver under load: reads keep working and re-replication restores 3 replicas",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "gfs-kill-" });
    const cluster = await startCluster({
      dataDir: dir,
      chunkservers: 4,
      master: { chunkBytes: CHUNK, tickMs: 200, deadAfterMs: 3000 },
      chunkserver: () => ({ heartbeatMs: 200 }),
    });
    api = fetchAs(cluster.secrets!.tokens.admin);
    const client = new GfsClient(cluster.master.url, {
      token: cluster.secrets!.tokens.admin,
    });
    try {
      const files = new Map<string, Uint8Array>();
      for (let i = 0; i < 6; i++) {
        const data = pattern(2 * CHUNK + i * 1000, i + 1);
        await client.upload(`/load/f${i}`, data);
        files.set(`/load/f${i}`, data);
      }
      let stop = false;
      let reads = 0;
      const failures: string[] = [];
      const readers = Array.from({ length: 3 }, async (_, r) => {
        while (!stop) {
          for (const [path, data] of files) {
            if (stop) break;
            try {
              const got = await client.readAll(path);
              if (
                got.length !== data.length ||
                !got.every((b, i) => b === data[i])
              ) failures.push(`${path}: wrong bytes`);
              // Block reads too: these go over the chunkservers' data ports.
              const at = (reads * 7919 + r * 104_729) % (data.length - 4096);
              const block = await client.pread(path, at, 4096);
              if (!block.every((b, i) => b === data[at + i])) {
                failures.push(`${path}: wrong bytes at ${at} (pread)`);
              }
              reads++;
            } catch (e) {
              failures.push(`${path} (reader ${r}): ${String(e)}`);
            }
          }
        }
      });
      const writer = (async () => {
        let i = 0;
        while (!stop) {
          const data = pattern(CHUNK + 17 * i, 100 + i);
          try {
            await client.upload(`/load/w${i}`, data);
            files.set(`/load/w${i}`, data);
          } catch (e) {
            failures.push(`upload w${i}: ${String(e)}`);
          }
          i++;
        }
      })();
      await until("some reads", () => Promise.resolve(reads > 6));
      await cluster.chunkservers[1]!.stop(true); // kill -9
      const killedAt = Date.now();
      const readsAtKill = reads;
      await until("the dead server to be noticed", async () => {
        const h = await (await api(`${cluster.master.url}/v1/health`)).json();
        return h.deadServers === 1;
      });
      await until("every chunk back at its replication goal", async () => {
        const h = await (await api(`${cluster.master.url}/v1/health`)).json();
        return h.deadServers === 1 && h.underReplicated === 0 && h.lost === 0;
      }, 90_000);
      const repairMs = Date.now() - killedAt;
      const readsAfter = reads;
      await until(
        "reads after the repair",
        () => Promise.resolve(reads > readsAfter + 6),
      );
      stop = true;
      await Promise.all([...readers, writer]);
      assert.deepEqual(failures, []);
      // Every pread after the kill was served by a survivor's port: the
      // bulk port while a pooled connection is free, else the data port.
      let portCalls = 0;
      for (const s of cluster.chunkservers.filter((_, i) => i !== 1)) {
        const text = await (await api(`${s.url}/metrics`)).text();
        for (const port of ["data", "bulk"]) {
          portCalls += Number(
            new RegExp(
              `gfs_chunkserver_${port}_port_calls_total\\{[^}]*\\} (\\d+)`,
            ).exec(text)?.[1] ?? 0,
          );
        }
      }
      assert.ok(
        portCalls >= reads - readsAtKill,
        `${portCalls} data and bulk port calls for ${
          reads - readsAtKill
        } preads`,
      );
      for (const path of files.keys()) {
        const loc = await client.locate(path);
        for (const c of loc.chunks) {
          assert.equal(c.replicas.length, 3, `${path} chunk ${c.handle}`);
          assert.ok(!c.replicas.includes(cluster.chunkservers[1]!.url));
        }
      }
      assert.ok(repairMs < 90_000);
    } finally {
      await cluster.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
