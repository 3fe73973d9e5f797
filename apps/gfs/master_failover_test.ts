import assert from "node:assert/strict";
import { GfsClient } from "./client/client.ts";
import { startCluster } from "./process_cluster.ts";
import { fetchAs, pattern, until } from "./_test_support.ts";

/** fetch with the cluster's admin token (set once the cluster runs). */
let api: typeof fetch = fetch;

const CHUNK = 256 * 1024;

interface MasterView {
  serving: boolean;
  role: string;
  term: number;
  leaderUrl: string | null;
  appliedIndex: number;
  commitIndex: number;
}

async function view(url: string): Promise<MasterView> {
  return await (await api(`${url}/v1/master`)).json() as MasterView;
}

Deno.test({
  name:
    "three replicated masters: kill -9 of the leader under uploads (twice under STRATA_LONG) loses no acknowledged file, followers redirect, a restarted master catches up",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "gfs-masters-" });
    const cluster = await startCluster({
      dataDir: dir,
      masters: 3,
      chunkservers: 3,
      master: {
        chunkBytes: CHUNK,
        tickMs: 200,
        deadAfterMs: 3000,
        checkpointEvery: 40,
        raftTickMs: 50,
      },
      chunkserver: () => ({ heartbeatMs: 200 }),
    });
    api = fetchAs(cluster.secrets!.tokens.admin);
    // Master calls over kept-alive HTTP/1.1 (the `http1` option, as
    // tablet servers make them): pooled connections to the killed leader
    // must fail over like fetch's. Other tests cover fetch's failover.
    const client = new GfsClient(cluster.masterUrls, {
      token: cluster.secrets!.tokens.admin,
      http1: true,
    });
    let stop = false;
    try {
      const first = await cluster.leaderIndex();
      // A follower redirects to the leader and says who leads.
      const follower = cluster.masterUrls[(first + 1) % 3]!;
      const fv = await view(follower);
      assert.equal(fv.serving, false);
      assert.equal(fv.leaderUrl, cluster.masterUrls[first]);
      const redirect = await api(`${follower}/v1/ls?prefix=/`, {
        redirect: "manual",
      });
      await redirect.body?.cancel();
      assert.equal(redirect.status, 307);
      assert.equal(
        redirect.headers.get("location"),
        `${cluster.masterUrls[first]}/v1/ls?prefix=/`,
      );

      const acked = new Map<string, Uint8Array>();

      const workers = Array.from({ length: 2 }, async (_, w) => {
        for (let i = 0; !stop; i++) {
          const path = `/w${w}/f${i}`;
          const data = pattern(CHUNK * (i % 3) + 777 * (w + 1), w * 1000 + i);
          try {
            await client.upload(path, data);
            acked.set(path, data);
          } catch {
            // no master served in time: this upload is not acknowledged
            await new Promise((r) => setTimeout(r, 100));
          }
        }
      });

      let leader = first;
      // The second round kills the new leader with the restarted master
      // back as a voter (about 6 s more idle): with the long tests.
      const rounds = Deno.env.get("STRATA_LONG") === "1" ? 2 : 1;
      for (let round = 0; round < rounds; round++) {
        const before = acked.size;
        await until(
          "uploads acknowledged by this leader",
          () => Promise.resolve(acked.size >= before + 4),
          60_000,
        );
        await cluster.masters[leader]!.stop(true); // kill -9
        const next = await cluster.leaderIndex(30_000);
        assert.notEqual(next, leader, "another master took over");
        const after = acked.size;
        await until(
          "uploads acknowledged after the failover",
          () => Promise.resolve(acked.size >= after + 4),
          60_000,
        );
        // The killed master comes back and catches up from the leader.
        const back = await cluster.startMaster(leader);
        const target = (await view(cluster.masterUrls[next]!)).commitIndex;
        await until(
          "the restarted master catches up",
          async () => (await view(back.url)).appliedIndex >= target,
          30_000,
        );
        leader = next;
      }
      stop = true;
      await Promise.all(workers);

      // Every acknowledged file is there with its bytes, from whichever master serves.
      for (const [path, data] of acked) {
        const got = await client.readAll(path);
        assert.equal(got.length, data.length, path);
        assert.ok(got.every((b, i) => b === data[i]), path);
      }
      // Readers never see a pending file: every listed file is a finished upload.
      const listed = await client.ls("/");
      for (const f of listed) {
        const [, w, name] = /^\/w(\d)\/f(\d+)$/.exec(f.path) ?? [];
        assert.ok(w !== undefined, f.path);
        const i = Number(name);
        assert.equal(f.length, CHUNK * (i % 3) + 777 * (Number(w) + 1));
      }
      for (const path of acked.keys()) {
        assert.ok(listed.some((f) => f.path === path), `${path} listed`);
      }
      // The metadata is the same on every replica.
      const leaderUrl = await cluster.leaderUrl();
      const applied = (await view(leaderUrl)).appliedIndex;
      for (const url of cluster.masterUrls) {
        await until(
          `${url} applies everything`,
          async () => (await view(url)).appliedIndex >= applied,
          30_000,
        );
      }
      const metrics = await (await api(`${leaderUrl}/metrics`)).text();
      assert.match(metrics, /strata_raft_is_leader 1/);
    } finally {
      stop = true;
      await cluster.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
