// Membership of a replicated GFS master group through the admin API
// (`POST /v1/master/members`), under a load of uploads (16 KiB files with
// data, through one chunkserver): a fourth master started with --join is
// added as a learner, catches up, is promoted, and a follower is removed;
// nothing acknowledged is lost (every acknowledged file reads back with
// its bytes) and every remaining master applies the same log. In process
// (the masters and the chunkserver in this test's process, on loopback),
// so it is cheap.
import assert from "node:assert/strict";
import { loadOrCreateSecrets } from "@strata/edge";
import { freePort } from "@strata/process";
import { GfsClient } from "./client/client.ts";
import { type RunningMaster, startMaster } from "./master/master_server.ts";
import {
  type RunningChunkserver,
  startChunkserver,
} from "./chunkserver/chunkserver.ts";
import { fetchAs, until } from "./_test_support.ts";

Deno.test({
  name:
    "gfs masters: POST /v1/master/members adds a --join master as a learner, promotes it (with gfs:cli) and removes a follower under uploads, every acknowledged file reading back; bad bodies get 400, a write token 403, adding a member or promoting a voter 409, an unknown id 404",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "strata-gfs-members-" });
    const secrets = await loadOrCreateSecrets(`${dir}/auth`);
    const api = fetchAs(secrets.tokens.admin);
    const http = [1, 2, 3, 4].map(() => freePort());
    const raft = [1, 2, 3, 4].map(() => freePort());
    const entry = (i: number) =>
      `${i + 1}=127.0.0.1:${raft[i]}/127.0.0.1:${http[i]}`;
    const peers = [0, 1, 2].map(entry).join(",");
    const urls = http.map((p) => `http://127.0.0.1:${p}`);
    const start = (i: number, join = false) =>
      startMaster({
        dataDir: `${dir}/master-${i + 1}`,
        authDir: secrets.dir,
        port: http[i]!,
        id: i + 1,
        peers: join ? `${peers},${entry(i)}` : peers,
        join,
        raftTickMs: 50,
        tickMs: 200,
        // One chunkserver holds every chunk.
        replication: 1,
        chunkBytes: 1 << 20,
      });
    const masters: (RunningMaster | undefined)[] = await Promise.all(
      [0, 1, 2].map((i) => start(i)),
    );
    const view = async (u: string) =>
      await (await api(`${u}/v1/master`)).json() as {
        serving: boolean;
        appliedIndex: number;
        members: { id: number; role: string }[];
      };
    const eventually = (what: string, fn: () => Promise<boolean>) =>
      until(what, fn, 15_000, 50);
    // Sent to the leader found at the start; should leadership have moved
    // (one event loop runs all four masters), the 307 is followed by hand:
    // fetch would drop the token on a redirect to another origin.
    const change = async (
      u: string,
      body: unknown,
      token = secrets.tokens.admin,
    ): Promise<Response> => {
      for (let hop = 0;; hop++) {
        const r = await fetchAs(token)(`${u}/v1/master/members`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
          redirect: "manual",
          signal: AbortSignal.timeout(15_000),
        });
        const to = r.headers.get("location");
        if (r.status !== 307 || to === null || hop === 3) return r;
        await r.body?.cancel();
        u = new URL(to).origin;
      }
    };
    let stop = false;
    let chunkserver: RunningChunkserver | undefined;
    const acked: string[] = [];
    const failures: string[] = [];
    let writer: Promise<void> | undefined;
    try {
      let leader = -1;
      await eventually("a leader", async () => {
        for (const i of [0, 1, 2]) {
          if ((await view(urls[i]!)).serving) leader = i;
        }
        return leader >= 0;
      });
      // The chunkserver and the client are given all four masters' URLs
      // (master 4's is where it will be added), as an operator would.
      chunkserver = await startChunkserver({
        dataDir: `${dir}/cs`,
        authDir: secrets.dir,
        master: urls.join(","),
        heartbeatMs: 100,
        scrubPauseMs: 0,
        chunkBytes: 1 << 20,
      });
      const client = new GfsClient(urls, { token: secrets.tokens.admin });
      const bytesOf = (i: number) => new Uint8Array(16 * 1024).fill(i & 0xff);
      await eventually("the chunkserver registered", async () => {
        try {
          await client.upload("/m/probe", bytesOf(0));
          return true;
        } catch {
          return false;
        }
      });
      writer = (async () => {
        for (let i = 0; !stop; i++) {
          try {
            await client.upload(`/m/f${i}`, bytesOf(i));
            acked.push(`/m/f${i}`);
          } catch (e) {
            failures.push(String(e));
          }
        }
      })();
      const L = urls[leader]!;

      // Bad input and a too-low role, answered before anything changes.
      for (
        const bad of [
          { action: "add", id: 4 },
          { action: "add", id: 4, peer: "nope", http: "127.0.0.1:1" },
          { action: "evict", id: 2 },
          { action: "remove", id: 0 },
          { action: "remove", id: 2, extra: 1 },
        ]
      ) {
        const r = await change(L, bad);
        const body = await r.json();
        assert.equal(r.status, 400, JSON.stringify(bad));
        assert.equal(body.error.code, "bad_request");
      }
      const r403 = await change(
        L,
        { action: "remove", id: 2 },
        secrets.tokens.write,
      );
      await r403.body?.cancel();
      assert.equal(r403.status, 403);

      for (
        const [body, status] of [
          [
            { action: "add", id: 2, peer: "127.0.0.1:1", http: "127.0.0.1:2" },
            409,
          ],
          [{ action: "promote", id: 2 }, 409],
          [{ action: "promote", id: 9 }, 404],
          [{ action: "remove", id: 9 }, 404],
        ] as const
      ) {
        const r = await change(L, body);
        await r.body?.cancel();
        assert.equal(r.status, status, JSON.stringify(body));
      }

      // Add master 4 as a learner (it joins without bootstrapping), let it
      // catch up, then promote it.
      masters[3] = await start(3, true);
      const added = await change(L, {
        action: "add",
        id: 4,
        peer: `127.0.0.1:${raft[3]}`,
        http: `127.0.0.1:${http[3]}`,
      });
      const addedBody = await added.json();
      assert.equal(added.status, 200, JSON.stringify(addedBody));
      assert.deepEqual(
        addedBody.members.find((m: { id: number }) => m.id === 4)?.role,
        "learner",
      );
      await eventually(
        "master 4 caught up",
        async () =>
          (await view(urls[3]!)).appliedIndex >=
            (await view(L)).appliedIndex - 2,
      );
      // Promoted with the CLI (a follower's URL first: it follows the 307).
      const cli = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          new URL("./cli.ts", import.meta.url).pathname,
          "--master",
          [...[0, 1, 2].filter((i) => i !== leader), leader].map((i) => urls[i])
            .join(","),
          "--token",
          secrets.tokens.admin,
          "masters",
          "promote",
          "4",
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const out = new TextDecoder().decode(cli.stdout);
      assert.ok(cli.success, new TextDecoder().decode(cli.stderr));
      assert.equal(
        JSON.parse(out).find((m: { id: number }) => m.id === 4)?.role,
        "voter",
        out,
      );

      // Remove a follower of the current leader; stop it.
      await eventually("a leader", async () => {
        for (const i of [0, 1, 2, 3]) {
          if ((await view(urls[i]!)).serving) leader = i;
        }
        return (await view(urls[leader]!)).serving;
      });
      const gone = [0, 1, 2].find((i) => i !== leader)!;
      const removed = await change(L, { action: "remove", id: gone + 1 });
      const removedBody = await removed.json();
      assert.equal(removed.status, 200, JSON.stringify(removedBody));
      assert.deepEqual(
        removedBody.members.map((m: { id: number; role: string }) =>
          `${m.id}:${m.role}`
        ).sort(),
        [0, 1, 2, 3].filter((i) => i !== gone).map((i) => `${i + 1}:voter`),
      );
      await masters[gone]!.close();
      masters[gone] = undefined;
      const before = acked.length;
      await eventually(
        "creations acknowledged after the removal",
        () => Promise.resolve(acked.length >= before + 5),
      );
      stop = true;
      await writer;

      // Nothing acknowledged is lost, and the remaining masters, master 4
      // included, apply the same log.
      const listed = new Set((await client.ls("/m/")).map((f) => f.path));
      assert.deepEqual(acked.filter((p) => !listed.has(p)), [], "lost");
      for (const p of acked) {
        const d = await client.download(p);
        const got = new Uint8Array(await new Response(d.stream).arrayBuffer());
        assert.deepEqual(got, bytesOf(Number(p.slice("/m/f".length))), p);
      }
      const remaining = [0, 1, 2, 3].filter((i) => i !== gone);
      await eventually("the same log on every remaining master", async () => {
        const v = await Promise.all(remaining.map((i) => view(urls[i]!)));
        return v.every((x) => x.appliedIndex === v[0]!.appliedIndex);
      });
      console.log(
        `  master 4 added, promoted, master ${gone + 1} removed (leader ${
          leader + 1
        }); ${acked.length} files acknowledged, ${failures.length} failed`,
      );
    } finally {
      stop = true;
      await writer;
      await chunkserver?.close();
      await Promise.allSettled(masters.map((m) => m?.close()));
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
