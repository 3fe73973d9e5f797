// MasterEndpoints under a silent master (a partitioned leader): a call
// whose one attempt outlasts the failover window fails, but the next call
// must go to another master, or a caller whose every call is shorter than
// one timeout (a chunkserver's heartbeat) never leaves the silent one.
import assert from "node:assert/strict";
import { z } from "zod";
import { isGfsError } from "./gfs_error.ts";
import { MasterEndpoints } from "./http_json.ts";

/** A TCP server that accepts connections and never answers. */
function silentServer(): { url: string; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  (async () => {
    try {
      for await (const c of listener) conns.push(c);
    } catch { /* closed */ }
  })();
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    close() {
      listener.close();
      for (const c of conns) c.close();
    },
  };
}

Deno.test("a call that times out on a silent master within the failover window leaves it: the next call goes to another master", async () => {
  const silent = silentServer();
  const ac = new AbortController();
  const good = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    () => Response.json({ ok: true }),
  );
  const goodUrl = `http://127.0.0.1:${good.addr.port}`;
  try {
    // As a chunkserver's heartbeats: each attempt outlasts the window.
    const m = new MasterEndpoints([silent.url, goodUrl], 100);
    const Ok = z.object({ ok: z.boolean() });
    await assert.rejects(
      m.call("/v1/heartbeat", Ok, { body: {}, timeoutMs: 300 }),
      (e) => isGfsError(e, "unavailable"),
    );
    assert.deepEqual(
      await m.call("/v1/heartbeat", Ok, { body: {}, timeoutMs: 300 }),
      { ok: true },
    );
    assert.equal(m.current, goodUrl);
  } finally {
    silent.close();
    ac.abort();
    await good.finished;
  }
});

Deno.test("a follower's redirect to the leader is remembered: the next call goes straight to the leader", async () => {
  const ac = new AbortController();
  let leaderCalls = 0;
  let followerCalls = 0;
  const leader = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    () => {
      leaderCalls++;
      return Response.json({ ok: true });
    },
  );
  const leaderUrl = `http://127.0.0.1:${leader.addr.port}`;
  const follower = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    (req) => {
      followerCalls++;
      const u = new URL(req.url);
      return new Response(null, {
        status: 307,
        headers: { location: `${leaderUrl}${u.pathname}${u.search}` },
      });
    },
  );
  const followerUrl = `http://127.0.0.1:${follower.addr.port}`;
  try {
    const m = new MasterEndpoints([followerUrl, leaderUrl]);
    const Ok = z.object({ ok: z.boolean() });
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(await m.call("/v1/lookup?path=/a", Ok), { ok: true });
    }
    assert.equal(followerCalls, 1);
    assert.equal(leaderCalls, 3);
    assert.equal(m.current, leaderUrl);
  } finally {
    ac.abort();
    await Promise.all([leader.finished, follower.finished]);
  }
});
