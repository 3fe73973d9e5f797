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

Deno.test("ReplicatedNode halts after a failed fsync: it stops ticking, sends nothing, writes nothing more and refuses requests", async () => {
  const sched = new Scheduler();
  const ids = [1];
  const procs = new Map(ids.map((id) => [id, new SimProcess(sched, 0, 0)]));
  const net = new SimPeerNetwork(sched, new Prng(1), procs, {
    mode: "datagram",
    minDelayMs: 1,
    maxDelayMs: 1,
    loss: 0,
    duplicate: 0,
  });
  // Once the (single-member) node leads, every fsync fails: the first is
  // the append of a proposal.
  const latency = { minMs: 1, maxMs: 1, fsyncFailure: 0 };
  const disk = new SimReplicaDisk(sched, new Prng(2), latency);
  let failedAt = -1;
  disk.onWriteFailure = () => failedAt = sched.now;
  const proc = procs.get(1)!;
  const ep = net.endpoint(1);
  let sentAfter = 0;
  const errors: string[] = [];
  const origError = console.error;
  console.error = (...a: unknown[]) => errors.push(a.join(" "));
  // Writes issued after the failure: on Linux a retried fsync can succeed
  // without the lost data, so the node must not retry (as etcd panics).
  let writesAfter = 0;
  const storage = disk.open(proc);
  const counted = {
    ...storage,
    get lastIndex() {
      return storage.lastIndex;
    },
    get byteSize() {
      return storage.byteSize;
    },
  } as typeof storage;
  for (
    const k of [
      "append",
      "writeHardState",
      "truncateSuffix",
      "installSnapshot",
    ] as const
  ) {
    // deno-lint-ignore no-explicit-any
    (counted as any)[k] = (...a: unknown[]) => {
      if (failedAt >= 0) writesAfter++;
      // deno-lint-ignore no-explicit-any
      return (storage as any)[k](...a);
    };
  }
  const timers = proc.timers();
  let timersAfter = 0;
  let node: ReplicatedNode<unknown> | undefined;
  try {
    node = await ReplicatedNode.start(
      {
        id: 1,
        members: new Map(
          ids.map((id) => [id, { peer: SimPeerNetwork.address(id) }]),
        ),
        dataDir: "sim://node-1",
        listen: { hostname: "sim", port: 0 },
        tickMs: 100,
        electionTicks: 10,
        metrics: new ReplicationMetrics(),
        clock: proc.clock,
      },
      kvWorkload.newMachine(),
      {
        storage: counted,
        transport: {
          ...ep,
          send: (m, a) => {
            if (failedAt >= 0) sentAfter++;
            return ep.send(m, a);
          },
        },
        timers: {
          ...timers,
          setTimer: (ms, f) => {
            if (failedAt >= 0) timersAfter++;
            return timers.setTimer(ms, f);
          },
        },
        random: new Prng(3).float.bind(new Prng(3)),
      },
    );
    for (let i = 0; i < 20; i++) {
      sched.runFor(10);
      await drain();
    }
    for (let i = 0; i < 200 && !node.isLeader; i++) {
      sched.runFor(10);
      await drain();
    }
    assert.ok(node.isLeader);
    latency.fsyncFailure = 1;
    const first = node.propose(
      new Uint8Array([1]),
      new AbortController().signal,
    )
      .then(() => "ok", (e) => String(e));
    for (let i = 0; i < 2000 && failedAt < 0; i++) {
      sched.runFor(10);
      await drain();
    }
    assert.ok(failedAt >= 0, "the node never wrote the proposal");
    assert.match(await first, /the node failed/);
    const term = node.status().term;
    // Ten election timeouts later: still the same term, nothing sent.
    for (let i = 0; i < 1000; i++) {
      sched.runFor(10);
      await drain();
    }
    assert.equal(node.status().term, term, "a failed node kept campaigning");
    assert.equal(sentAfter, 0);
    // (A node that went on ticking would arm a timer every 100 ms.)
    assert.ok(
      timersAfter <= 1,
      `${timersAfter} timers armed after the failure`,
    );
    assert.equal(writesAfter, 0, "the node retried writes on a failed disk");
    await assert.rejects(
      async () =>
        await node!.propose(new Uint8Array([1]), AbortSignal.timeout(1000)),
      /the node failed: Error: EIO/,
    );
    assert.ok(errors.some((e) => /fatal: EIO/.test(e)), errors.join("\n"));
  } finally {
    console.error = origError;
    for (const p of procs.values()) p.crash();
    await node?.stop();
  }
});
