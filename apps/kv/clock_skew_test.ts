// A node whose clock is deliberately skewed (the clock port injected): while
// it leads, the clock guard refuses lease reads, which go through ReadIndex
// instead; /v1/status says why and /metrics counts it. A healthy leader of
// the same cluster serves lease reads from its lease.
import assert from "node:assert/strict";
import { type NodeClock, systemClock } from "@strata/replication";
import { freePort } from "@strata/process";
import { createHttpApi, DEFAULT_LIMITS } from "./http_api.ts";
import { KvNode, type PeerAddress } from "./kv_node.ts";

/** The system clocks, except that the wall clock runs `rate` times as fast from now on. */
function fastWall(rate: number): NodeClock {
  const m0 = performance.now();
  const w0 = Date.now();
  return {
    monotonic: systemClock.monotonic,
    wall: () => w0 + (performance.now() - m0) * rate,
  };
}

/** The one place this test starts nodes (in process, so the clock can be injected). */
async function startNodes(dir: string, clocks: Record<number, NodeClock>) {
  const members = new Map<number, PeerAddress>();
  for (const id of [1, 2, 3]) {
    members.set(id, {
      peer: `127.0.0.1:${await freePort()}`,
      http: `127.0.0.1:${await freePort()}`,
    });
  }
  const nodes = new Map<number, { node: KvNode; http: string }>();
  const servers: Deno.HttpServer[] = [];
  for (const [id, a] of members) {
    const port = Number(a.peer.split(":")[1]);
    const node = await KvNode.start({
      id,
      members,
      dataDir: `${dir}/node-${id}`,
      listen: { hostname: "127.0.0.1", port },
      httpAddress: a.http,
      tickMs: 50, // election timeout 0.5-1 s: no spurious election on a loaded machine
      clock: clocks[id],
    });
    const server = Deno.serve(
      {
        hostname: "127.0.0.1",
        port: Number(a.http!.split(":")[1]),
        onListen: () => {},
      },
      createHttpApi(
        node,
        // In process and about the clock guard only: no tokens to pass around.
        { auth: "off", hosts: ["127.0.0.1"] },
        DEFAULT_LIMITS,
      ).fetch,
    );
    servers.push(server);
    nodes.set(id, { node, http: a.http! });
  }
  return {
    nodes,
    async stop() {
      for (const s of servers) await s.shutdown().catch(() => {});
      for (const n of nodes.values()) await n.node.stop();
    },
  };
}

type Status = {
  role: string;
  leader: number;
  lease: {
    valid: boolean;
    reason?: string;
    clockSuspect: boolean;
    clock?: { localOk: boolean; reason?: string };
  };
};

async function status(http: string): Promise<Status> {
  return await (await fetch(`http://${http}/v1/status`)).json() as Status;
}

function counter(metrics: string, name: string): number {
  const m = metrics.match(new RegExp(`^${name} (\\S+)$`, "m"));
  return m ? Number(m[1]) : 0;
}

async function until<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  ms = 15_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const v = await fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

Deno.test({
  name:
    "a leader whose wall clock runs 1.5x its monotonic clock refuses lease reads (ReadIndex instead), says so in /v1/status and counts it in /metrics",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "strata-clock-skew-" });
    const c = await startNodes(dir, { 1: fastWall(1.5) });
    try {
      const n1 = c.nodes.get(1)!;
      await until("a first write", async () => {
        const r = await fetch(`http://${n1.http}/v1/kv/k`, {
          method: "PUT",
          body: "v1",
        });
        await r.body?.cancel();
        return r.ok ? true : undefined;
      });
      // Node 1 leads.
      await until("node 1 leading", async () => {
        const s = await status(n1.http);
        if (s.role === "leader") return true;
        if (s.leader !== 0 && s.leader !== 1) {
          await c.nodes.get(s.leader)!.node.transferLeadership(
            1,
            AbortSignal.timeout(5000),
          ).catch(() => {});
        }
      });
      // Within a window (2 s) the guard sees the wall clock run away.
      const s1 = await until(
        "the guard to distrust node 1's clock",
        async () => {
          const s = await status(n1.http);
          return s.lease.clockSuspect ? s : undefined;
        },
      );
      assert.equal(s1.lease.valid, false);
      // The measured rate is near 1.5 (a loaded machine reads 1.49 or 1.51).
      const reason = s1.lease.reason ?? "";
      const rate = reason.match(
        /clock suspect: the wall clock runs at ([\d.]+)x/,
      );
      assert.ok(rate, reason);
      assert.ok(Math.abs(Number(rate[1]) - 1.5) < 0.05, reason);
      assert.equal(s1.lease.clock?.localOk, false);

      const before = await (await fetch(`http://${n1.http}/metrics`)).text();
      for (let i = 0; i < 5; i++) {
        const r = await fetch(
          `http://${n1.http}/v1/kv/k?consistency=lease`,
        );
        const body = await r.text();
        assert.equal(r.status, 200, body);
      }
      const after = await (await fetch(`http://${n1.http}/metrics`)).text();
      const d = (name: string) => counter(after, name) - counter(before, name);
      assert.equal(d('strata_raft_lease_reads_total{served="read_index"}'), 5);
      assert.equal(d('strata_raft_lease_reads_total{served="lease"}'), 0);
      // Counted as the guard's refusals while node 1 leads (all five unless
      // a busy machine cost it the leadership meanwhile).
      assert.ok(d("strata_raft_clock_guard_refusals_total") >= 1);
      assert.equal(counter(after, "strata_raft_clock_suspect"), 1);

      // Control: node 2 (sound clocks) leads; its lease serves the reads.
      await n1.node.transferLeadership(2, AbortSignal.timeout(5000));
      const n2 = c.nodes.get(2)!;
      const s2 = await until("node 2's lease", async () => {
        const s = await status(n2.http);
        return s.role === "leader" && s.lease.valid ? s : undefined;
      });
      assert.equal(s2.lease.clockSuspect, false);
      const b2 = await (await fetch(`http://${n2.http}/metrics`)).text();
      const r = await fetch(`http://${n2.http}/v1/kv/k?consistency=lease`);
      assert.equal(r.status, 200);
      await r.body?.cancel();
      const a2 = await (await fetch(`http://${n2.http}/metrics`)).text();
      assert.equal(
        counter(a2, 'strata_raft_lease_reads_total{served="lease"}') -
          counter(b2, 'strata_raft_lease_reads_total{served="lease"}'),
        1,
      );
    } finally {
      await c.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
