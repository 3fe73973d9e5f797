// A replicated GFS master whose disk fills up (a real ENOSPC, on a small
// tmpfs in a private mount namespace: @strata/hosts' SmallDisk): its Raft
// replica halts on the failed write and the process exits with code 74
// after one JSON `fatal` line on stderr, instead of running on halted;
// started again once there is room, it has every acknowledged file.
// Needs root; skipped with a message outside CI.
import assert from "node:assert/strict";
import { skipWithoutSmallDisk, SmallDisk } from "@strata/hosts";
import { exitWithin, freePort, spawnUntilReady } from "@strata/process";
import { loadOrCreateSecrets } from "@strata/edge";
import { GfsClient } from "./client/client.ts";

const skip = await skipWithoutSmallDisk("gfs master_disk_failure_test");
const MAIN = new URL("./master_main.ts", import.meta.url).pathname;

Deno.test({
  name:
    "gfs master (Raft, one replica) on a disk that fills up: the failed write halts it, it exits with code 74 after a fatal line, and restarted with room it has every acknowledged file",
  ignore: skip,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const root = await Deno.makeTempDir({ prefix: "strata-gfs-disk-" });
    const dataDir = `${root}/master`;
    await Deno.mkdir(dataDir);
    const secrets = await loadOrCreateSecrets(`${root}/auth`);
    // 80 MiB: the log's first segment is preallocated (64 MiB).
    const disk = await SmallDisk.create(dataDir, 80);
    const port = freePort();
    const args = [
      "run",
      "-A",
      MAIN,
      "--data-dir",
      dataDir,
      "--auth-dir",
      secrets.dir,
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "--id",
      "1",
      "--peers",
      `1=127.0.0.1:${freePort()}/127.0.0.1:${port}`,
      "--raft-tick-ms",
      "20",
      // A checkpoint every 10 operations: a write that needs new space
      // soon (log appends go to the preallocated segment).
      "--checkpoint-every",
      "10",
    ];
    const isReady = (l: unknown) =>
      (l as { event?: string }).event === "listening" ? true : undefined;
    const [cmd, ...pre] = [...disk.prefix, Deno.execPath()];
    const first = new Deno.Command(cmd!, {
      args: [...pre, ...args],
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    }).spawn();
    const stderr = new Response(first.stderr).text();
    let second;
    try {
      const stdout = first.stdout.pipeThrough(new TextDecoderStream())
        .getReader();
      let out = "";
      while (!out.includes('"listening"')) {
        const { value, done } = await stdout.read();
        if (done) throw new Error(`the master exited: ${await stderr}`);
        out += value;
      }
      stdout.cancel().catch(() => {});
      const client = new GfsClient(`http://127.0.0.1:${port}`, {
        token: secrets.tokens.admin,
      });
      // An empty file through the gateway: one request, not retried (the
      // client library would keep trying for its 20 s failover time).
      const create = async (path: string) => {
        const r = await fetch(`http://127.0.0.1:${port}/v1/files${path}`, {
          method: "PUT",
          headers: { authorization: `Bearer ${secrets.tokens.admin}` },
          signal: AbortSignal.timeout(5000),
        });
        const body = await r.text();
        if (r.status !== 201) throw new Error(`${r.status} ${body}`);
      };
      const acked: string[] = [];
      const until = performance.now() + 15_000;
      while (acked.length === 0) {
        try {
          await create("/d/before");
          acked.push("/d/before");
        } catch (e) {
          if (performance.now() > until) throw e;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      await disk.fill();
      let failed: unknown;
      for (let i = 0; i < 30 && failed === undefined; i++) {
        try {
          await create(`/d/f${i}`);
          acked.push(`/d/f${i}`);
        } catch (e) {
          failed = e;
        }
      }
      assert.ok(failed !== undefined, "30 uploads on a full disk succeeded");
      const status = await exitWithin(first, 15_000);
      assert.ok(
        status !== undefined,
        "the halted master still runs after 15 s",
      );
      assert.equal(status.code, 74, "exit code of the halted master");
      const fatal = (await stderr).split("\n").flatMap((l) => {
        try {
          const j = JSON.parse(l);
          return j.event === "fatal" ? [j] : [];
        } catch {
          return [];
        }
      });
      assert.equal(fatal.length, 1, await stderr);
      assert.equal(fatal[0].name, "gfs master 1");
      assert.equal(fatal[0].exitCode, 74);
      assert.match(fatal[0].error, /No space left on device/);

      await disk.free();
      second = await spawnUntilReady(args, isReady, {
        prefix: disk.prefix,
        stderr: "null",
      });
      const listed = new Set<string>();
      const again = performance.now() + 15_000;
      while (acked.some((p) => !listed.has(p))) {
        try {
          for (const f of await client.ls("/d/")) listed.add(f.path);
        } catch { /* electing itself */ }
        if (performance.now() > again) break;
        if (acked.some((p) => !listed.has(p))) {
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      assert.deepEqual(acked.filter((p) => !listed.has(p)), [], "lost");
      console.log(
        `  ${acked.length} uploads acknowledged, then: ${
          String(failed).slice(0, 120)
        }; exit ${status.code}: ${fatal[0].error}`,
      );
    } finally {
      try {
        first.kill("SIGKILL");
      } catch { /* exited */ }
      await first.status;
      await stderr.catch(() => {});
      await second?.stop(true);
      await disk.close();
      await Deno.remove(root, { recursive: true }).catch(() => {});
    }
  },
});
