/**
 * bench:raft-core — committed entries per second of strata's pure raft core
 * (no I/O: in-memory storage, messages handed from node to node), for 3 and
 * 5 nodes and proposal batches of 1, 16 and 256; plus messages and encoded
 * bytes per committed entry (the core is driven by this file's own
 * minimal loop, not the simulator); and the same workload through the
 * deterministic simulator, which runs production `ReplicatedNode`s (their
 * Ready loop, the wire codec, simulated disk, network and clocks).
 *
 * Anchor: etcd-io/raft's in-memory benchmark, about 5.9 µs per proposal for
 * 3 nodes (the figure quoted in issue 5; Go is not available here to run it
 * in the same process). Goal: within 2x per proposal, batch 1, 3 nodes.
 */
import {
  encodeRaftMessage,
  MemoryStorage,
  type Message,
  RawNode,
} from "@strata/raft";
import { ReplicaCluster } from "@strata/sim";
import { percentile, QUICK, Suite } from "./harness.ts";

const suite = new Suite(
  "raft_core",
  "strata raft core: committed entries/s in memory (3/5 nodes, batch 1/16/256), messages and bytes per entry; etcd raft anchor 5.9 µs/proposal",
);

/** etcd raft, 3 nodes, in-memory transport: µs per proposal (issue 5's anchor). */
const ETCD_US_PER_PROPOSAL = 5.9;
const PAYLOAD_BYTES = 64;

interface CoreCluster {
  nodes: RawNode[];
  storages: MemoryStorage[];
  queue: Message[];
  committed: number;
  messages: number;
  encodedBytes: number;
  encode: boolean;
}

function makeCluster(n: number): CoreCluster {
  const peers = Array.from({ length: n }, (_, i) => i + 1);
  const storages = peers.map(() => new MemoryStorage());
  let s = 1;
  const random = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
  const nodes = peers.map((id, i) =>
    new RawNode({
      id,
      peers,
      storage: storages[i]!,
      electionTick: 10,
      heartbeatTick: 1,
      random,
      maxInflightMsgs: 256,
      maxSizePerMsg: 1024 * 1024,
    })
  );
  const c: CoreCluster = {
    nodes,
    storages,
    queue: [],
    committed: 0,
    messages: 0,
    encodedBytes: 0,
    encode: false,
  };
  drain(c);
  nodes[0]!.campaign();
  drain(c);
  if (nodes[0]!.raft.role !== "leader") throw new Error("no leader");
  c.committed = 0;
  c.messages = 0;
  return c;
}

/** Processes Readys and delivers messages until nothing is left. */
function drain(c: CoreCluster): void {
  while (pass(c)) {
    // until quiet
  }
}

/**
 * One pass of the event loop: every node handles its Ready (persist, send,
 * apply), then the messages sent are delivered. Proposals made between
 * passes are pipelined: the next one goes out before the previous commits.
 * @returns whether anything happened.
 */
function pass(c: CoreCluster): boolean {
  {
    let progressed = false;
    for (let i = 0; i < c.nodes.length; i++) {
      const node = c.nodes[i]!;
      if (!node.hasReady()) continue;
      progressed = true;
      const rd = node.ready();
      const s = c.storages[i]!;
      if (rd.snapshot) s.applySnapshot(rd.snapshot);
      if (rd.entries.length > 0) s.append(rd.entries);
      if (rd.hardState) s.setHardState(rd.hardState);
      for (const m of rd.messages) {
        c.queue.push(m);
        c.messages++;
        if (c.encode) c.encodedBytes += encodeRaftMessage(m).length;
      }
      if (i === 0) c.committed += rd.committedEntries.length;
      node.advance();
    }
    if (c.queue.length > 0) {
      const q = c.queue;
      c.queue = [];
      for (const m of q) c.nodes[m.to - 1]!.step(m);
      progressed = true;
    }
    return progressed;
  }
}

/** Keeps memory flat: snapshot + compact every node's log now and then. */
function compact(c: CoreCluster): void {
  for (let i = 0; i < c.nodes.length; i++) {
    const node = c.nodes[i]!;
    const s = c.storages[i]!;
    const applied = node.raft.log.applied;
    if (applied - s.firstIndex() < 20_000) continue;
    const at = applied - 1000;
    s.createSnapshot(at, node.confState(), new Uint8Array());
    s.compact(at);
  }
}

function runCore(n: number, batch: number, totalEntries: number) {
  const c = makeCluster(n);
  const leader = c.nodes[0]!;
  const payloads = Array.from(
    { length: batch },
    () => new Uint8Array(PAYLOAD_BYTES).fill(7),
  );
  const perEntryNs: number[] = [];
  // Warm up, then measure.
  for (let i = 0; i < Math.max(50, (QUICK ? 500 : 20_000) / batch); i++) {
    leader.proposeBatch(payloads);
    pass(c);
  }
  drain(c);
  compact(c);
  const startCommitted = c.committed;
  const startMessages = c.messages;
  const rounds = Math.max(1, Math.floor(totalEntries / batch));
  const t0 = performance.now();
  for (let r = 0; r < rounds; r++) {
    const t = performance.now();
    leader.proposeBatch(payloads);
    pass(c);
    perEntryNs.push(((performance.now() - t) * 1e6) / batch);
    if ((r & 1023) === 1023) compact(c);
  }
  drain(c);
  const elapsedMs = performance.now() - t0;
  const committed = c.committed - startCommitted;
  const messages = c.messages - startMessages;
  // Bytes per entry: one more short pass with every message encoded.
  c.encode = true;
  const bytesFrom = c.committed;
  for (let r = 0; r < Math.max(4, Math.floor(2048 / batch)); r++) {
    leader.proposeBatch(payloads);
    pass(c);
  }
  drain(c);
  const bytesPerEntry = c.encodedBytes / (c.committed - bytesFrom);
  perEntryNs.sort((a, b) => a - b);
  return {
    committed,
    elapsedMs,
    messagesPerEntry: messages / committed,
    bytesPerEntry,
    meanNs: (elapsedMs * 1e6) / committed,
    p50Ns: percentile(perEntryNs, 0.5),
    p99Ns: percentile(perEntryNs, 0.99),
    samples: perEntryNs.length,
  };
}

async function runSim(n: number, batch: number, totalEntries: number) {
  const c = new ReplicaCluster({ seed: 1, nodes: n });
  const id = await c.checkOneLeader();
  const leader = c.node(id);
  const payload = "7".repeat(PAYLOAD_BYTES);
  const startApplied = leader.sm.appliedIndex;
  const t0 = performance.now();
  const rounds = Math.max(1, Math.floor(totalEntries / batch));
  for (let r = 0; r < rounds; r++) {
    // Proposals of one instant go into one batch, as in production.
    for (let b = 0; b < batch; b++) c.start(id, payload);
    await c.run(2);
  }
  await c.run(50);
  const elapsedMs = performance.now() - t0;
  const committed = leader.sm.appliedIndex - startApplied;
  return { committed, elapsedMs, meanNs: (elapsedMs * 1e6) / committed };
}

const total = QUICK ? 2_000 : 60_000;
for (const n of [3, 5]) {
  for (const batch of [1, 16, 256]) {
    const entries = batch === 1 ? total / 2 : total * 2;
    const r = runCore(n, batch, entries);
    const name = `${n} nodes, batch ${batch}`;
    suite.record({
      group: "committed entries (pure core, in memory)",
      name,
      opsPerSec: (r.committed / r.elapsedMs) * 1000,
      meanNs: r.meanNs,
      p50Ns: r.p50Ns,
      p99Ns: r.p99Ns,
      samples: r.samples,
      bytes: Math.round(r.bytesPerEntry),
    });
    suite.metric(
      `${name}: µs per committed entry`,
      +(r.meanNs / 1000).toFixed(3),
    );
    suite.metric(
      `${name}: messages per committed entry`,
      +r.messagesPerEntry.toFixed(3),
    );
    suite.metric(
      `${name}: encoded bytes per committed entry`,
      +r.bytesPerEntry.toFixed(1),
    );
    console.log(
      `    ${(r.meanNs / 1000).toFixed(2)} µs/entry, ${
        r.messagesPerEntry.toFixed(2)
      } msgs/entry, ${
        r.bytesPerEntry.toFixed(0)
      } B/entry (${PAYLOAD_BYTES} B payload)`,
    );
  }
}

for (const n of [3, 5]) {
  for (const batch of [1, 16]) {
    const r = await runSim(n, batch, QUICK ? 500 : 10_000);
    suite.record({
      group: "committed entries (deterministic simulator, ReplicatedNode)",
      name: `${n} nodes, batch ${batch}`,
      opsPerSec: (r.committed / r.elapsedMs) * 1000,
      meanNs: r.meanNs,
      p50Ns: r.meanNs,
      p99Ns: r.meanNs,
      samples: 1,
    });
  }
}

const core3 = suite.get(
  "committed entries (pure core, in memory)",
  "3 nodes, batch 1",
);
suite.metric(
  "etcd raft anchor: µs per proposal (3 nodes, in memory)",
  ETCD_US_PER_PROPOSAL,
);
// The goal is judged on the median proposal: on the shared 2-core machine
// the process is preempted for milliseconds at a time, which inflates the
// mean by an amount that has nothing to do with the core. The mean is
// reported next to it, without a goal.
suite.compare(
  "median µs per proposal, 3 nodes batch 1 vs etcd raft anchor",
  "time",
  core3.p50Ns / 1000,
  ETCD_US_PER_PROPOSAL,
  { op: "<=", value: 2 },
);
suite.compare(
  "mean µs per proposal, 3 nodes batch 1 vs etcd raft anchor",
  "time",
  core3.meanNs / 1000,
  ETCD_US_PER_PROPOSAL,
);
await suite.finish();
