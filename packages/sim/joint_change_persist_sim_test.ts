import assert from "node:assert/strict";
import { setImmediate } from "node:timers";
import { ReplicatedNode, ReplicationMetrics } from "@strata/replication";
import { kvWorkload } from "./kv_workload.ts";
import { Prng } from "./prng.ts";
import { Scheduler } from "./scheduler.ts";
import { SimPeerNetwork } from "./sim_peer_network.ts";
import { SimProcess } from "./sim_process.ts";
import { SimReplicaDisk } from "./sim_replica_disk.ts";

const drain = () => new Promise<void>((r) => setImmediate(r));

// Both failed before the fixes the membership simulation led to: the
// proposing leader knew the new member's address in memory only, and the
// commit index of a membership change was not written (a restart rebuilt an
// older configuration).
Deno.test("a leader that applies a joint change has written the new member's address and the change's commit index", async () => {
  const sched = new Scheduler();
  const proc = new SimProcess(sched, 0, 0);
  const net = new SimPeerNetwork(sched, new Prng(1), new Map([[1, proc]]), {
    mode: "datagram",
    minDelayMs: 1,
    maxDelayMs: 1,
    loss: 0,
    duplicate: 0,
  });
  const disk = new SimReplicaDisk(sched, new Prng(2), { minMs: 1, maxMs: 1 });
  const run = async <T>(p: Promise<T>): Promise<T> => {
    let out: { v: T } | undefined;
    let err: unknown;
    p.then((v) => out = { v }, (e) => err = e ?? new Error("rejected"));
    for (let i = 0; i < 100_000 && !out && !err; i++) {
      if (!sched.step()) await drain();
      await drain();
    }
    if (err) throw err;
    assert.ok(out, "did not settle");
    return out.v;
  };
  const node = await run(ReplicatedNode.start(
    {
      id: 1,
      members: new Map([[1, { peer: SimPeerNetwork.address(1) }]]),
      dataDir: "sim://node-1",
      listen: { hostname: "sim", port: 0 },
      metrics: new ReplicationMetrics(),
      clock: proc.clock,
    },
    kvWorkload.newMachine(),
    {
      storage: disk.open(proc),
      transport: net.endpoint(1),
      timers: proc.timers(),
      random: () => 0.5,
    },
  ));
  try {
    await run(
      (async () => {
        while (!node.isLeader) {
          await new Promise<void>((r) => sched.after(10, () => r()));
        }
      })(),
    );
    await run(
      node.changeMembers(
        [{ type: "addLearner", nodeId: 2 }],
        { 2: { peer: SimPeerNetwork.address(2) } },
        AbortSignal.timeout(60_000),
      ),
    );
    const conf = node.status().commitIndex;
    proc.crash();
    disk.crash();
    proc.restart();
    const after = await disk.open(proc).recover();
    assert.deepEqual(after.members, { 2: { peer: SimPeerNetwork.address(2) } });
    assert.ok(
      after.hardState.commit >= conf,
      `commit ${after.hardState.commit} written, the change is at ${conf}`,
    );
  } finally {
    proc.crash();
  }
});
