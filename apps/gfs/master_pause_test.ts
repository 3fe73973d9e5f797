// Real processes: the leading GFS master is stopped with SIGSTOP for longer
// than its lease, another master takes over and deletes a file, and the
// old leader is resumed with lookups of that file already queued at its
// door. It must not answer any of them from its stale metadata.
import assert from "node:assert/strict";
import { GfsClient } from "./client/client.ts";
import { startCluster } from "./process_cluster.ts";
import { fetchAs } from "./_test_support.ts";

/** fetch with the cluster's admin token (set once the cluster runs). */
let api: typeof fetch = fetch;

async function masterView(url: string) {
  const res = await api(`${url}/v1/master`, {
    signal: AbortSignal.timeout(500),
  });
  return await res.json() as { serving: boolean; term: number };
}

Deno.test({
  name:
    "a master leader stopped longer than its lease and resumed does not answer a lookup the new leader changed",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "gfs-master-pause-" });
    const cluster = await startCluster({
      dataDir: dir,
      masters: 3,
      chunkservers: 0,
      master: { raftTickMs: 20 }, // election timeout 200 ms, lease 160 ms
    });
    api = fetchAs(cluster.secrets!.tokens.admin);
    const paused: Deno.ChildProcess[] = [];
    try {
      const client = new GfsClient(cluster.masterUrls, {
        token: cluster.secrets!.tokens.admin,
      });
      await client.upload("/f", new Uint8Array(0));
      // serving === true: the leader holds a lease (its peers' clocks measured).
      const old = await cluster.leaderIndex(30_000);
      const oldUrl = cluster.masterUrls[old]!;
      assert.equal(
        (await (await api(`${oldUrl}/v1/stat/f`)).json()).path,
        "/f",
      );

      const proc = cluster.masters[old]!.process;
      proc.kill("SIGSTOP");
      paused.push(proc);
      // Another master takes over and deletes the file.
      let next = -1;
      const deadline = Date.now() + 20_000;
      while (next < 0 && Date.now() < deadline) {
        for (let i = 0; i < 3 && next < 0; i++) {
          if (i === old) continue;
          try {
            if ((await masterView(cluster.masterUrls[i]!)).serving) next = i;
          } catch { /* starting over */ }
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(next >= 0, "no other master took over");
      const del = await api(`${cluster.masterUrls[next]}/v1/files/f`, {
        method: "DELETE",
      });
      assert.equal(del.status, 200, await del.text());

      // Lookups queue up at the stopped master, then it resumes.
      const lookups = Array.from(
        { length: 16 },
        () =>
          api(`${oldUrl}/v1/stat/f`, {
            redirect: "manual",
            signal: AbortSignal.timeout(15_000),
          }).then(async (r) => ({ status: r.status, body: await r.text() })),
      );
      await new Promise((r) => setTimeout(r, 1000));
      proc.kill("SIGCONT");
      paused.length = 0;
      const answers = await Promise.all(lookups);
      for (const a of answers) {
        assert.notEqual(
          a.status,
          200,
          `the resumed old leader answered from stale metadata: ${a.body}`,
        );
      }
      // It redirects to the new leader (or, before it learned who leads, refused).
      assert.ok(
        answers.every((a) => a.status === 307 || a.status === 503),
        JSON.stringify(answers.map((a) => a.status)),
      );
    } finally {
      for (const p of paused) p.kill("SIGCONT");
      await cluster.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
