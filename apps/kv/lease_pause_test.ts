// Real processes: lease reads while the leader is stopped with SIGSTOP for
// longer than its lease, then resumed. The resumed old leader must not
// answer a lease read from its stale state (its lease is measured on the
// monotonic clock, which kept running while it was stopped), so the whole
// history must be linearizable. STRATA_LONG=1 runs longer, with more
// pauses.
import assert from "node:assert/strict";
import { checkKvHistory } from "@strata/sim";
import { KvClient } from "./client.ts";
import { OpRecorder } from "./_recorded_ops.ts";
import { type LocalCluster, startLocalCluster } from "./cluster_launcher.ts";

const LONG = Deno.env.get("STRATA_LONG") === "1";
const TICK_MS = 20; // election timeout 10 ticks = 200 ms; lease 8 ticks = 160 ms

/** The one place these tests start node processes (flags for every node go here). */
function startNodes(dataRoot: string): Promise<LocalCluster> {
  return startLocalCluster({
    size: 3,
    dataRoot,
    extraArgs: ["--tick-ms", String(TICK_MS)],
  });
}

/** The admin token the launcher generated for the cluster. */
function tokenOf(c: LocalCluster): string {
  return c.secrets!.tokens.admin;
}

type Status = {
  id: number;
  role: string;
  term: number;
  lease?: { valid: boolean; reason?: string };
};

async function statusOf(
  http: string,
  token: string,
): Promise<Status | undefined> {
  try {
    const res = await fetch(`http://${http}/v1/status`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(500),
    });
    return await res.json() as Status;
  } catch {
    return undefined; // down or paused
  }
}

/** Waits for a leader whose lease is valid (the clock guard has measured its peers). */
async function leaderWithLease(c: LocalCluster, timeoutMs = 15_000) {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    for (const n of c.nodes.values()) {
      const s = await statusOf(n.http, tokenOf(c));
      if (s?.role === "leader" && s.lease?.valid) return n.id;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("no leader with a valid lease");
}

async function leaseReadsServed(c: LocalCluster): Promise<number> {
  let total = 0;
  for (const n of c.nodes.values()) {
    const text = await fetch(`http://${n.http}/metrics`, {
      headers: { authorization: `Bearer ${tokenOf(c)}` },
    }).then((r) => r.text());
    const m = text.match(
      /strata_raft_lease_reads_total\{served="lease"\} (\d+)/,
    );
    total += m ? Number(m[1]) : 0;
  }
  return total;
}

/**
 * Clients writing unique values and reading with `consistency=lease`;
 * client c reads from node (c mod 3) + 1 only, so some read the leader that
 * is about to be stopped.
 */
function startLoad(c: LocalCluster, clients: number, keys: number) {
  const rec = new OpRecorder();
  const history = rec.history;
  let running = true;
  const ids = [...c.nodes.keys()].sort();
  const all = ids.map((id) => c.nodes.get(id)!.http);
  const workers = Array.from({ length: clients }, async (_, ci) => {
    const writer = new KvClient(all, {
      timeoutMs: 3000,
      attempts: 3,
      token: tokenOf(c),
    });
    const reader = new KvClient([all[ci % all.length]!], {
      timeoutMs: 8000,
      attempts: 1,
      token: tokenOf(c),
    });
    let seq = 0;
    while (running) {
      const key = `k${(ci + seq) % keys}`;
      if (seq % 2 === 0) {
        await rec.put(ci, writer, key, `c${ci}-${seq}`);
      } else {
        await rec.get(ci, reader, key, "lease");
      }
      seq++;
    }
  });
  /**
   * Fires `n` lease reads at once at `http` (a stopped node: they queue at
   * its door and are answered when it resumes), recorded in the history.
   */
  const burst = (http: string, n: number) => {
    const reader = new KvClient([http], {
      timeoutMs: 15_000,
      attempts: 1,
      token: tokenOf(c),
    });
    return Promise.all(Array.from({ length: n }, async (_, i) => {
      const key = `k${i % keys}`;
      await rec.get(clients + i, reader, key, "lease");
    }));
  };
  return {
    history,
    burst,
    async stop() {
      running = false;
      await Promise.all(workers);
    },
  };
}

Deno.test({
  name:
    "lease reads stay linearizable when the leader is stopped longer than its lease and resumed",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "strata-lease-pause-" });
    const c = await startNodes(dir);
    try {
      const rounds = LONG ? 6 : 2;
      const load = startLoad(c, 6, 3);
      for (let round = 0; round < rounds; round++) {
        const leader = await leaderWithLease(c);
        await new Promise((r) => setTimeout(r, 500));
        // Stopped for 1.5 s: 10x the lease, long enough for an election.
        c.signal(leader, "SIGSTOP");
        // By then another leader has acknowledged writes; the reads queued
        // at the stopped leader's door must see them.
        await new Promise((r) => setTimeout(r, 1200));
        const queued = load.burst(c.nodes.get(leader)!.http, 16);
        await new Promise((r) => setTimeout(r, 300));
        c.signal(leader, "SIGCONT");
        await queued;
        await new Promise((r) => setTimeout(r, 1500));
      }
      await load.stop();
      const served = await leaseReadsServed(c);
      const reads = load.history.filter((o) => o.input.op === "get").length;
      const writes = load.history.filter((o) => o.output !== undefined)
        .length - reads;
      assert.ok(served > 0, "no read was served from a lease");
      assert.ok(writes > 20, `only ${writes} acknowledged writes`);
      const r = checkKvHistory(load.history, { timeoutMs: 20_000 });
      assert.ok(
        r.ok,
        `not linearizable (${reads} reads, ${served} from a lease): ${r.info}`,
      );
    } finally {
      await c.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
