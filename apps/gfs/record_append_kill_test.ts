import assert from "node:assert/strict";
import { GfsClient } from "./client/client.ts";
import { startCluster } from "./process_cluster.ts";
import { pattern } from "./_test_support.ts";

const CHUNK = 256 * 1024; // small, so appends roll over to new chunks
const LONG = Deno.env.get("STRATA_LONG") === "1";

/** A record that names its writer and number, 100 B – 4 KiB long. */
function record(w: number, i: number): Uint8Array {
  const size = 100 + ((w * 7919 + i * 104_729) % 3997);
  const out = pattern(size, w * 1_000_003 + i + 1);
  out.set(new TextEncoder().encode(`w${w} r${i} `));
  return out;
}

/** Polls `done` every 50 ms for up to 120 s (then goes on; the asserts judge). */
async function waitFor(done: () => boolean): Promise<void> {
  const end = performance.now() + 120_000;
  while (!done() && performance.now() < end) {
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test({
  name:
    "concurrent small record appends under kill -9 of a chunkserver: every acknowledged record is present and intact",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "gfs-append-kill-" });
    const cluster = await startCluster({
      dataDir: dir,
      chunkservers: 4,
      master: { chunkBytes: CHUNK, tickMs: 200, deadAfterMs: 3000 },
      chunkserver: () => ({ heartbeatMs: 200 }),
    });
    // Two clients, eight appenders each: appenders of one client share its
    // cached write target, the two clients race for new chunks and leases.
    const clients = [0, 1].map(() =>
      new GfsClient(cluster.master.url, {
        token: cluster.secrets!.tokens.admin,
      })
    );
    try {
      const acked = new Map<string, Uint8Array>();
      const failures: string[] = [];
      let stop = false;
      let ackedAfterKill = 0;
      let killed = false;
      const appenders = Array.from({ length: 16 }, async (_, w) => {
        const c = clients[w % 2]!;
        for (let i = 0; !stop; i++) {
          const r = record(w, i);
          try {
            await c.append("/logs/commit", r);
            acked.set(`w${w} r${i}`, r);
            if (killed) ackedAfterKill++;
          } catch (e) {
            failures.push(`w${w} r${i}: ${String(e)}`);
          }
        }
      });
      // Progress, not time: a loaded machine may append slowly.
      const target = LONG ? 1000 : 100;
      await waitFor(() => acked.size >= target || failures.length > 0);
      // Kill a replica of the chunk being appended to.
      const loc = await clients[0]!.locate("/logs/commit");
      const last = loc.chunks[loc.chunks.length - 1]!;
      const victim = cluster.chunkservers.find((s) =>
        last.replicas.includes(s.url)
      )!;
      assert.ok(victim, "a live replica of the last chunk");
      const before = acked.size;
      await victim.stop(true);
      killed = true;
      await waitFor(() => ackedAfterKill >= target || failures.length > 0);
      stop = true;
      await Promise.all(appenders);
      console.log(
        `${before} records acknowledged before the kill, ${ackedAfterKill} after`,
      );
      assert.deepEqual(failures, [], "an append failed for good");
      assert.ok(before >= target, `only ${before} records before the kill`);
      assert.ok(
        ackedAfterKill >= target,
        `only ${ackedAfterKill} records acknowledged after the kill`,
      );
      const seen = new Map<string, Uint8Array>();
      for await (const r of clients[0]!.readRecords("/logs/commit")) {
        const name = new TextDecoder().decode(r.subarray(0, 12)).split(" ")
          .slice(0, 2).join(" ");
        seen.set(name, r);
      }
      let missing = 0, damaged = 0;
      for (const [name, bytes] of acked) {
        const got = seen.get(name);
        if (got === undefined) missing++;
        else if (
          got.length !== bytes.length || !got.every((b, k) => b === bytes[k])
        ) damaged++;
      }
      assert.equal(
        missing,
        0,
        `${missing} of ${acked.size} acked records lost`,
      );
      assert.equal(damaged, 0, `${damaged} records read back different`);
      assert.ok(
        (await clients[0]!.stat("/logs/commit")).chunks > 1,
        "appends rolled over to new chunks",
      );
      // The appends went over the chunkservers' data ports (framed TCP).
      let portCalls = 0;
      for (const s of cluster.chunkservers.filter((s) => s !== victim)) {
        const text = await (await fetch(`${s.url}/metrics`, {
          headers: {
            authorization: `Bearer ${cluster.secrets!.tokens.read}`,
          },
        })).text();
        portCalls += Number(
          /gfs_chunkserver_data_port_calls_total\{[^}]*\} (\d+)/.exec(text)
            ?.[1] ?? 0,
        );
      }
      assert.ok(portCalls >= target, `${portCalls} data port calls`);
    } finally {
      await cluster.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
