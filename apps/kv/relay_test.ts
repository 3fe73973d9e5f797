// Multi-site relaying with real processes: 5 kv nodes in two sites
// (a: 1, 2, 3; b: 4, 5), the leader moved to site b so that site a is
// remote and a commit needs one of its followers. Under a write load the
// leader relays site a's appends through one of its members; kill -9 of
// that relay: commits continue, another member of site a becomes the
// relay, no acknowledged write is lost and the history is linearizable.
// STRATA_LONG=1 runs longer and also stops the second relay (SIGSTOP: a
// slow relay) for a while.
import assert from "node:assert/strict";
import { checkKvHistory } from "@strata/sim";
import { KvClient } from "./client.ts";
import { OpRecorder } from "./_recorded_ops.ts";
import { type LocalCluster, startLocalCluster } from "./cluster_launcher.ts";

const LONG = Deno.env.get("STRATA_LONG") === "1";
const TICK_MS = 50; // election timeout 0.5-1 s: a loaded machine stalls 5 processes
const RELAY_TIMEOUT_MS = 300;
const SITES: Record<number, string> = {
  1: "a",
  2: "a",
  3: "a",
  4: "b",
  5: "b",
};

interface SiteStatus {
  site: string;
  relaying: boolean;
  remote: { site: string; members: number[]; relay?: number }[];
  forwarded: number;
  fallbacks: number;
}

async function status(
  cluster: LocalCluster,
  id: number,
): Promise<
  {
    role: string;
    leader: number;
    commitIndex: number;
    appliedIndex: number;
    site?: SiteStatus;
  }
> {
  const res = await fetch(`${cluster.nodes.get(id)!.url}/v1/status`, {
    headers: { authorization: `Bearer ${cluster.secrets!.tokens.read}` },
    signal: AbortSignal.timeout(2_000),
  });
  return await res.json();
}

/** Polls `f` every 20 ms until it returns a value (bounded). */
async function until<T>(
  what: string,
  f: () => Promise<T | undefined>,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined) return v;
    } catch { /* a node down or busy: ask again */ }
    if (performance.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Moves leadership to `to` (retrying through whichever node leads). */
async function transferTo(cluster: LocalCluster, to: number): Promise<void> {
  await until(`node ${to} leads`, async () => {
    if ((await status(cluster, to)).role === "leader") return true;
    for (const id of cluster.nodes.keys()) {
      if ((await status(cluster, id)).role !== "leader") continue;
      await fetch(
        `${cluster.nodes.get(id)!.url}/v1/cluster/transfer-leadership`,
        {
          method: "POST",
          headers: {
            authorization: `Bearer ${cluster.secrets!.tokens.admin}`,
            "content-type": "application/json",
          },
          body: JSON.stringify({ to }),
          signal: AbortSignal.timeout(3_000),
        },
      ).then((r) => r.body?.cancel());
    }
    return undefined;
  }, 20_000);
}

/** Writers and readers on 16 keys, each write a unique value; a recorded history. */
function startLoad(cluster: LocalCluster, clients: number) {
  const rec = new OpRecorder();
  let acked = 0;
  let running = true;
  const urls = [...cluster.nodes.values()].map((n) => n.http);
  const token = cluster.secrets!.tokens.admin;
  const workers = Array.from({ length: clients }, async (_, c) => {
    const kv = new KvClient(urls, { token, timeoutMs: 3_000, attempts: 3 });
    for (let seq = 0; running; seq++) {
      const key = `k${(c * 5 + seq) % 16}`;
      if (seq % 3 === 2) await rec.get(c, kv, key);
      else if (await rec.put(c, kv, key, `c${c}-${seq}`)) acked++;
    }
  });
  return {
    rec,
    get acked() {
      return acked;
    },
    /** Waits for `n` more acknowledged writes (bounded). */
    async moreAcks(n: number, timeoutMs = 20_000) {
      const target = acked + n;
      await until(
        `${n} more acknowledged writes`,
        () => Promise.resolve(acked >= target ? true : undefined),
        timeoutMs,
      );
    },
    async stop() {
      running = false;
      await Promise.all(workers);
    },
  };
}

/** The leader's relay for site a, once it has one (and it has forwarded appends). */
async function relayOfSiteA(
  cluster: LocalCluster,
  leader: number,
  not?: number,
): Promise<number> {
  return await until(`a relay for site a other than ${not}`, async () => {
    const s = await status(cluster, leader);
    // A stall on the loaded machine may have moved leadership: move it back.
    if (s.role !== "leader") await transferTo(cluster, leader);
    const relay = s.site?.remote.find((r) => r.site === "a")?.relay;
    if (relay === undefined || relay === not) return undefined;
    const forwarded = (await status(cluster, relay)).site?.forwarded ?? 0;
    return forwarded > 0 ? relay : undefined;
  });
}

Deno.test("kill -9 of a site's relay under load: commits continue through a new relay, no acknowledged write lost, linearizable", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-relay-test-" });
  const cluster = await startLocalCluster({
    size: 5,
    dataRoot: dir,
    extraArgs: [
      "--tick-ms",
      String(TICK_MS),
      "--relay-timeout-ms",
      String(RELAY_TIMEOUT_MS),
    ],
    sites: (id) => SITES[id],
  });
  const load = startLoad(cluster, 4);
  try {
    // Sites are shown in every member's status.
    for (const id of cluster.nodes.keys()) {
      const s = await until(
        `status of ${id}`,
        () => status(cluster, id),
      );
      assert.equal(s.site?.site, SITES[id]);
    }
    await transferTo(cluster, 4);
    await load.moreAcks(10);
    const firstRelay = await relayOfSiteA(cluster, 4);
    assert.equal(SITES[firstRelay], "a");
    const before = load.acked;
    const killedAt = performance.now();
    await cluster.kill(firstRelay);
    // Commits continue: site a's remaining followers still count.
    await load.moreAcks(10);
    const second = await relayOfSiteA(cluster, 4, firstRelay);
    assert.equal(SITES[second], "a");
    console.log(
      `  relay ${firstRelay} killed; ${
        load.acked - before
      } writes acknowledged since; relay ${second} forwarding after ${
        (performance.now() - killedAt).toFixed(0)
      } ms`,
    );
    const killed = firstRelay;
    if (LONG) {
      // A slow relay: the second one stopped (SIGSTOP) for 3 s. Site a
      // then has a single live follower, so appends go to it directly.
      await load.moreAcks(200, 60_000);
      const stoppedAt = performance.now();
      cluster.signal(second, "SIGSTOP");
      try {
        await load.moreAcks(20);
        const s = await until("the stopped relay dropped", async () => {
          const st = await status(cluster, 4);
          return st.site!.remote.find((r) => r.site === "a")!.relay !== second
            ? st
            : undefined;
        });
        console.log(
          `  relay ${second} stopped: dropped after ${
            (performance.now() - stoppedAt).toFixed(0)
          } ms (site a's relay now ${
            s.site!.remote.find((r) => r.site === "a")!.relay ?? "none"
          })`,
        );
        await new Promise((r) => setTimeout(r, 2_000));
      } finally {
        cluster.signal(second, "SIGCONT");
      }
      await load.moreAcks(200, 60_000);
    }
    await load.moreAcks(5);
    await load.stop();
    // Every surviving follower catches up with the leader's commit index.
    await transferTo(cluster, 4);
    const leader = await status(cluster, 4);
    assert.ok(
      leader.site!.fallbacks >= 1,
      "the leader timed out on the killed relay",
    );
    for (const id of cluster.nodes.keys()) {
      if (id === killed) continue;
      await until(
        `node ${id} applies ${leader.commitIndex}`,
        async () =>
          (await status(cluster, id)).appliedIndex >= leader.commitIndex
            ? true
            : undefined,
      );
    }
    // A final linearizable read of every key joins the history, so a lost
    // acknowledged write would make it illegal.
    const kv = new KvClient([cluster.nodes.get(4)!.http], {
      token: cluster.secrets!.tokens.admin,
      timeoutMs: 5_000,
      attempts: 5,
    });
    for (let k = 0; k < 16; k++) {
      assert.ok(await load.rec.get(99, kv, `k${k}`) !== undefined);
    }
    const result = checkKvHistory(load.rec.history, { timeoutMs: 20_000 });
    assert.notEqual(
      result.result,
      "illegal",
      `history not linearizable: ${result.info}`,
    );
  } finally {
    await load.stop();
    await cluster.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
