// Keep-alives the leader takes in memory (session_renewals.ts), with real
// node processes: no log entry for them, a client sent to a follower moves
// to the leader, and a session survives the leader's kill -9 for its TTL
// after the last acknowledged keep-alive (a new leader counts it renewed
// at its takeover), then expires once nobody keeps it alive.
import assert from "node:assert/strict";
import { KvClient } from "./client.ts";
import { startLocalCluster } from "./cluster_launcher.ts";

const TICK_MS = 20; // election timeout 200-400 ms
const TTL_MS = 1500;

Deno.test("keep-alives on the leader write no log entry; after the leader's kill -9 the session lives out its TTL on the new leader, then expires", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-keepalive-test-" });
  const cluster = await startLocalCluster({
    size: 3,
    dataRoot: dir,
    extraArgs: ["--tick-ms", String(TICK_MS)],
  });
  try {
    const token = cluster.secrets!.tokens.admin;
    const status = async (url: string) =>
      await (await fetch(`${url}/v1/status`, {
        headers: { authorization: `Bearer ${token}` },
      })).json();
    let leader = 0;
    for (let i = 0; i < 200 && leader === 0; i++) {
      for (const n of cluster.nodes.values()) {
        const s = await status(n.url).catch(() => undefined);
        if (s?.role === "leader") leader = s.id;
      }
      if (leader === 0) await new Promise((r) => setTimeout(r, 25));
    }
    assert.ok(leader > 0, "no leader");
    const nodes = [...cluster.nodes.values()];
    const follower = nodes.find((n) => n.id !== leader)!;
    const leaderUrl = cluster.nodes.get(leader)!.url;
    // The follower first: the client must move to the leader by itself.
    const kv = new KvClient(
      [follower.url, ...nodes.filter((n) => n !== follower).map((n) => n.url)],
      { token, timeoutMs: 2000, attempts: 8 },
    );
    const session = await kv.openSession(TTL_MS, { keepAlive: false });
    await kv.put("held", "yes", { session: session.id });
    await kv.keepAlive(session.id); // through the follower: names the leader

    const before = (await status(leaderUrl)).lastIndex;
    for (let i = 0; i < 8; i++) {
      await kv.keepAlive(session.id);
      await new Promise((r) => setTimeout(r, TTL_MS / 4));
    }
    // Two TTLs of keep-alives, none in the log, and the session is alive.
    assert.equal((await status(leaderUrl)).lastIndex, before);
    assert.ok((await kv.get("held")) !== undefined);

    const acked = performance.now() - 1; // sent before this
    await kv.keepAlive(session.id);
    await cluster.kill(leader);
    // Until acked + TTL the session (and its key) must stay: read it on
    // the other nodes, which elect a new leader meanwhile.
    let reads = 0;
    while (performance.now() < acked + TTL_MS - 150) {
      const v = await kv.get("held").catch(() => null);
      if (v === null) continue;
      assert.ok(
        v !== undefined,
        `the session expired ${
          (performance.now() - acked).toFixed(0)
        } ms after its last keep-alive (TTL ${TTL_MS})`,
      );
      reads++;
    }
    assert.ok(reads > 0, "no read answered after the kill");
    // Nobody keeps it alive: it goes (the new leader's takeover + TTL).
    const deadline = performance.now() + 10_000;
    while ((await kv.get("held").catch(() => null)) !== undefined) {
      assert.ok(performance.now() < deadline, "the session never expired");
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await cluster.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
