// A kv node whose log has a bit flipped in the middle (an acknowledged
// record damaged in place, with intact records after it) refuses to start:
// one JSON `fatal` line naming the segment file and the byte, exit code 65,
// and the file left as it was (so restoring it, or replacing the member,
// is still possible). It must not cut the log there as if the
// tail were torn, which would silently drop acknowledged writes.
import assert from "node:assert/strict";
import { join } from "node:path";
import { exitWithin } from "@strata/process";
import { REPLICA_CORRUPT_EXIT_CODE } from "@strata/replication";
import { scanRecords } from "@strata/storage";
import { startLocalCluster } from "./cluster_launcher.ts";
import { KvClient } from "./client.ts";
import { kvNodeArgs } from "./node_args.ts";

Deno.test({
  name:
    "kv node with a bit flipped mid-log refuses to start (fatal line naming file and byte, exit 65); the refusal leaves the file untouched",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const root = await Deno.makeTempDir({ prefix: "strata-kv-corrupt-" });
    const cluster = await startLocalCluster({
      size: 1,
      dataRoot: root,
      extraArgs: ["--tick-ms", "20"],
    });
    let child: Deno.ChildProcess | undefined;
    try {
      const node = cluster.nodes.get(1)!;
      const token = cluster.secrets!.tokens.admin;
      const kv = new KvClient([node.url], { token, timeoutMs: 3000 });
      const until = performance.now() + 15_000;
      for (;;) {
        try {
          await kv.put("k0", "v0");
          break;
        } catch (e) {
          if (performance.now() > until) throw e;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      for (let i = 1; i < 20; i++) await kv.put(`k${i}`, `v${i}`);
      await cluster.stop();

      // Flip one bit in the payload of a record in the middle of the log.
      const logDir = join(node.dataDir, "log");
      const segs: string[] = [];
      for await (const e of Deno.readDir(logDir)) {
        if (e.name.endsWith(".seg")) segs.push(e.name);
      }
      segs.sort();
      const path = join(logDir, segs[segs.length - 1]!);
      const clean = await Deno.readFile(path);
      const first = Number(segs[segs.length - 1]!.slice(0, 20));
      const { offsets } = scanRecords(clean, first, 1 << 30);
      assert.ok(offsets.length >= 20, `${offsets.length} records in the log`);
      const at = offsets[Math.floor(offsets.length / 2)]!;
      const damaged = clean.slice();
      damaged[at + 20]! ^= 0x04;
      await Deno.writeFile(path, damaged);

      child = new Deno.Command(Deno.execPath(), {
        args: kvNodeArgs({
          id: 1,
          peers: cluster.peers,
          dataDir: node.dataDir,
          authDir: cluster.secrets!.dir,
        }),
        stdout: "null",
        stderr: "piped",
      }).spawn();
      const stderr = new Response(child.stderr).text();
      const status = await exitWithin(child, 20_000);
      assert.ok(status !== undefined, "the node still runs after 20 s");
      const err = await stderr;
      assert.equal(status.code, REPLICA_CORRUPT_EXIT_CODE, err);
      const fatal = err.split("\n").flatMap((l) => {
        try {
          const j = JSON.parse(l);
          return j.event === "fatal" ? [j] : [];
        } catch {
          return [];
        }
      });
      assert.equal(fatal.length, 1, err);
      assert.equal(fatal[0].exitCode, 65);
      assert.ok(fatal[0].error.includes(path), fatal[0].error);
      assert.ok(fatal[0].error.includes(`at byte ${at}`), fatal[0].error);
      assert.match(fatal[0].action, /refusing to start/);
      // The refusal changed nothing: the file is as damaged as it was left.
      assert.deepEqual(await Deno.readFile(path), damaged);
    } finally {
      try {
        child?.kill("SIGKILL");
      } catch { /* exited */ }
      await child?.status;
      await cluster.stop();
      await Deno.remove(root, { recursive: true }).catch(() => {});
    }
  },
});
