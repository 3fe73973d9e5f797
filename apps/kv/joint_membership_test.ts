// Real processes: a 3-node kv cluster replaces 2 of its 3 voters with 2 new
// nodes in ONE joint membership change (POST /v1/cluster/changes, the
// generated admin token), under a small write/read load. The new nodes
// start knowing only the initial member list: they learn each other's
// addresses from the change's context. The removed nodes are then stopped;
// every acknowledged write must be readable through each new node, the new
// majority must keep taking writes, and the whole history (puts and
// linearizable gets) must pass packages/sim's checker.
import assert from "node:assert/strict";
import { checkKvHistory } from "@strata/sim";
import { KvClient } from "./client.ts";
import { OpRecorder } from "./_recorded_ops.ts";
import {
  type LocalCluster,
  reserveAddresses,
  startLocalCluster,
} from "./cluster_launcher.ts";

const TICK_MS = 50; // election timeout 0.5-1 s: no spurious election on a loaded machine

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface ClusterView {
  leader: number;
  joint: boolean;
  voters: number[];
  learners: number[];
  votersOutgoing?: number[];
  members: { id: number; peerAddress?: string; httpAddress?: string }[];
}

/** Waits until node `http` reports a leader; returns its view. */
async function leaderSeenBy(
  http: string,
  token: string,
  timeoutMs = 15_000,
): Promise<ClusterView> {
  const kv = new KvClient([http], { token, attempts: 1, timeoutMs: 1000 });
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    try {
      const v = await kv.cluster() as unknown as ClusterView;
      if (v.leader) return v;
    } catch { /* not up yet */ }
    await sleep(50);
  }
  throw new Error(`${http} saw no leader within ${timeoutMs} ms`);
}

/**
 * Clients on shared keys (unique values; a put or a linearizable get per
 * step) plus, every third step, a put of a key of its own: each
 * acknowledged one must survive the reconfiguration.
 */
function startLoad(endpoints: () => string[], token: string, clients = 3) {
  const rec = new OpRecorder();
  const history = rec.history;
  const acked: string[] = [];
  let running = true;
  const workers = Array.from({ length: clients }, async (_, ci) => {
    let seq = 0;
    while (running) {
      // A fresh client each step: it sees endpoints added since.
      const kv = new KvClient(endpoints(), {
        token,
        timeoutMs: 3000,
        attempts: 8,
      });
      const own = seq % 3 === 2;
      const key = own ? `acked/c${ci}-${seq}` : `k${(ci + seq) % 3}`;
      if (own || seq % 3 === 0) {
        if (await rec.put(ci, kv, key, `c${ci}-${seq}`) && own) acked.push(key);
      } else {
        await rec.get(ci, kv, key, "linearizable");
      }
      seq++;
      await sleep(5);
    }
  });
  return {
    history,
    acked,
    async stop() {
      running = false;
      await Promise.all(workers);
    },
  };
}

/**
 * The scenario; `replaceLeader`: the leader is one of the two replaced
 * (it leads the joint configuration, then steps down once it is left).
 */
async function replaceTwoOfThree(replaceLeader: boolean) {
  const dir = await Deno.makeTempDir({ prefix: "strata-kv-joint-" });
  let c: LocalCluster | undefined;
  try {
    c = await startLocalCluster({
      size: 3,
      dataRoot: dir,
      extraArgs: ["--tick-ms", String(TICK_MS)],
    });
    const cluster = c;
    const token = cluster.secrets!.tokens.admin;
    const before = await leaderSeenBy(cluster.nodes.get(1)!.http, token);
    assert.equal(before.joint, false);
    assert.deepEqual(before.voters, [1, 2, 3]);

    // Two new nodes that know only the initial member list.
    const a4 = reserveAddresses();
    const a5 = reserveAddresses();
    await cluster.join(4, a4);
    await cluster.join(5, a5);

    const endpoints = () =>
      [...cluster.nodes.values()].map((n) => n.http).sort();
    const load = startLoad(endpoints, token);
    await sleep(1000);

    const leader = (await leaderSeenBy(cluster.nodes.get(1)!.http, token))
      .leader;
    const kept = replaceLeader
      ? [1, 2, 3].find((id) => id !== leader)!
      : leader;
    const removed = [1, 2, 3].filter((id) => id !== kept);
    const admin = new KvClient(endpoints(), { token, timeoutMs: 8000 });
    const started = performance.now();
    const answer = await admin.changeMembers([
      { action: "add", id: 4, peerAddress: a4.peer, httpAddress: a4.http },
      { action: "add", id: 5, peerAddress: a5.peer, httpAddress: a5.http },
      ...removed.map((id) => ({ action: "remove" as const, id })),
    ]) as unknown as ClusterView;
    const changeMs = performance.now() - started;
    const voters = [kept, 4, 5].sort((a, b) => a - b);
    assert.deepEqual(answer.voters, voters);
    assert.equal(answer.votersOutgoing, undefined);

    // Node 4 learned node 5's addresses from the change's context alone.
    // It applies the configuration a heartbeat or so after the leader
    // answered (later on a loaded machine): wait for it, within a bound.
    let seenBy4 = await leaderSeenBy(cluster.nodes.get(4)!.http, token);
    const settled = (v: ClusterView) =>
      !v.joint && JSON.stringify(v.voters) === JSON.stringify(voters);
    const waitStart = performance.now();
    while (!settled(seenBy4) && performance.now() - waitStart < 30_000) {
      await sleep(100);
      seenBy4 = await leaderSeenBy(cluster.nodes.get(4)!.http, token);
    }
    // On failure, say what every node believed (a catching-up node 4
    // knows the leader from heartbeats before it has the entries).
    const views = settled(seenBy4) ? "" : JSON.stringify(
      await Promise.all(
        [...cluster.nodes.values()].map((n) =>
          leaderSeenBy(n.http, token, 2000).catch((e) => String(e))
        ),
      ),
    );
    assert.equal(seenBy4.joint, false, views);
    assert.deepEqual(seenBy4.voters, voters, views);
    assert.equal(
      seenBy4.members.find((m) => m.id === 5)?.peerAddress,
      a5.peer,
    );

    // The removed voters go; the new majority carries on under load.
    const ackedBeforeStop = load.history.filter((o) => o.output).length;
    for (const id of removed) await cluster.kill(id, "SIGTERM");
    // Until the new majority has acknowledged a few operations (a client
    // request may wait out a 3 s timeout at a stopped node first), within
    // a bound.
    const ackedSinceStop = () =>
      load.history.filter((o) => o.output).length - ackedBeforeStop;
    const stoppedAt = performance.now();
    while (ackedSinceStop() <= 5 && performance.now() - stoppedAt < 20_000) {
      await sleep(100);
    }
    await sleep(500);
    await load.stop();
    const ackedAfterStop = ackedSinceStop();
    assert.ok(
      ackedAfterStop > 5,
      `only ${ackedAfterStop} operations acknowledged by the new majority`,
    );

    // Every acknowledged write, read through each new node.
    assert.ok(load.acked.length > 10, `only ${load.acked.length} writes`);
    for (const id of [4, 5]) {
      const kv = new KvClient([cluster.nodes.get(id)!.http], {
        token,
        attempts: 3,
      });
      const keys = new Set<string>();
      for await (const e of kv.scan("acked/")) keys.add(e.key);
      const missing = load.acked.filter((k) => !keys.has(k));
      assert.deepEqual(missing, [], `node ${id} lacks acknowledged writes`);
    }

    const r = checkKvHistory(load.history, { timeoutMs: 20_000 });
    assert.ok(r.ok, `not linearizable: ${r.info}`);
    console.log(
      `${
        replaceLeader ? "leader replaced" : "leader kept"
      }: joint change applied in ${
        changeMs.toFixed(0)
      } ms; ${load.history.length} operations, ${load.acked.length} acknowledged own-key writes, ${ackedAfterStop} after the old voters stopped`,
    );
  } finally {
    await c?.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

const test = (name: string, fn: () => Promise<void>, ignore = false) =>
  Deno.test({ name, ignore, sanitizeResources: false, sanitizeOps: false, fn });

// Known open problem: in about 1 run of 8 (more under load) the scan
// through the new members after the old leader was removed and stopped
// timed out 3 times in a row, although the new majority had acknowledged
// writes. Until it is understood, this scenario runs in `test:long` only,
// where it still fails when it happens.
const LONG = Deno.env.get("STRATA_LONG") === "1";

test(
  "two followers are replaced in one joint change under load; the new majority has every acknowledged write",
  () => replaceTwoOfThree(false),
);
test(
  "the leader and a follower are replaced in one joint change under load; the new majority has every acknowledged write",
  () => replaceTwoOfThree(true),
  !LONG,
);
