// A kv node whose disk fills up (a real ENOSPC, on a small tmpfs in a
// private mount namespace: @strata/hosts' SmallDisk): its replica halts on
// the failed write, the process exits with code 74 instead of running on
// halted, the launcher (as `deno task kv` runs it, supervising) reports
// the exit and restarts it, and once there is room again the restarted
// node has every acknowledged write. Needs root; skipped with a message
// outside CI.
import assert from "node:assert/strict";
import { skipWithoutSmallDisk, SmallDisk } from "@strata/hosts";
import { exitWithin } from "@strata/process";
import { startLocalCluster } from "./cluster_launcher.ts";
import { KvClient } from "./client.ts";

const skip = await skipWithoutSmallDisk("kv disk_failure_test");

Deno.test({
  name:
    "kv node on a disk that fills up: the failed write halts it, it exits with code 74, the supervising launcher restarts it, and every acknowledged write is there after",
  ignore: skip,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const root = await Deno.makeTempDir({ prefix: "strata-kv-disk-" });
    await Deno.mkdir(`${root}/node-1`);
    // 80 MiB: the log's first segment is preallocated (64 MiB).
    const disk = await SmallDisk.create(`${root}/node-1`, 80);
    const log: string[] = [];
    const cluster = await startLocalCluster({
      size: 1,
      dataRoot: root,
      prefix: disk.prefix,
      // A snapshot every 10 entries: a write that needs new space soon
      // (log appends go to the preallocated segment).
      extraArgs: ["--snapshot-entries", "10", "--tick-ms", "20"],
      supervise: { delayMs: 300, log: (l) => log.push(l) },
    });
    try {
      const node = cluster.nodes.get(1)!;
      const first = node.process;
      const kv = new KvClient([node.url], {
        token: cluster.secrets!.tokens.admin,
        timeoutMs: 3000,
        attempts: 1,
      });
      // The first write waits for the node to elect itself.
      const start = performance.now() + 15_000;
      for (;;) {
        try {
          await kv.put("before", "1");
          break;
        } catch (e) {
          if (performance.now() > start) throw e;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      await disk.fill();
      const acked = new Map<string, string>([["before", "1"]]);
      let failed: unknown;
      for (let i = 0; i < 40 && failed === undefined; i++) {
        try {
          await kv.put(`k${i}`, `v${i}`);
          acked.set(`k${i}`, `v${i}`);
        } catch (e) {
          failed = e;
        }
      }
      assert.ok(failed !== undefined, "40 writes on a full disk succeeded");
      const status = await exitWithin(first, 15_000);
      assert.ok(status !== undefined, "the halted node still runs after 15 s");
      assert.equal(status.code, 74, "exit code of the halted node");
      await disk.free();
      const end = performance.now() + 30_000;
      while (
        !log.includes("kv node 1 restarted") && performance.now() < end
      ) await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(log.slice(0, 1), [
        "kv node 1 exited with code 74; restarting it in 300 ms",
      ]);
      assert.ok(log.includes("kv node 1 restarted"), log.join("\n"));
      const again = cluster.nodes.get(1)!;
      assert.notEqual(again.process, first);
      const kv2 = new KvClient([again.url], {
        token: cluster.secrets!.tokens.admin,
        timeoutMs: 5000,
      });
      for (const [k, v] of acked) {
        const got = await kv2.get(k);
        assert.equal(got && new TextDecoder().decode(got.value), v, k);
      }
      console.log(
        `  ${acked.size} writes acknowledged, then: ${String(failed)}; ${
          log.join("; ")
        }`,
      );
    } finally {
      await cluster.stop();
      await disk.close();
      await Deno.remove(root, { recursive: true }).catch(() => {});
    }
  },
});
