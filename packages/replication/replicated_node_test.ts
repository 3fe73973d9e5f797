import assert from "node:assert/strict";
import { join } from "node:path";
import { freePort } from "@strata/process";
import { until } from "./_test_until.ts";
import {
  type CommandStateMachine,
  isReplicationError,
  ReplicatedNode,
} from "./mod.ts";

/** Appends numbers; apply returns the running sum, so results are checkable. */
class SumLog implements CommandStateMachine<number> {
  appliedIndex = 0;
  values: number[] = [];
  apply(index: number, command: Uint8Array): number {
    this.appliedIndex = index;
    const v = new DataView(command.buffer, command.byteOffset).getUint32(0);
    this.values.push(v);
    return this.values.reduce((a, b) => a + b, 0);
  }
  skip(index: number): void {
    this.appliedIndex = index;
  }
  snapshot(): Uint8Array {
    return new TextEncoder().encode(JSON.stringify(this.values));
  }
  restore(data: Uint8Array, index: number): void {
    this.values = JSON.parse(new TextDecoder().decode(data));
    this.appliedIndex = index;
  }
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

interface Group {
  nodes: Map<number, ReplicatedNode<number>>;
  start(id: number): Promise<ReplicatedNode<number>>;
  leader(): ReplicatedNode<number> | undefined;
  stopAll(): Promise<void>;
}

async function group(root: string, snapshotEntries = 100_000): Promise<Group> {
  const members = new Map<number, { peer: string; http: string }>();
  for (const id of [1, 2, 3]) {
    members.set(id, {
      peer: `127.0.0.1:${freePort()}`,
      http: `127.0.0.1:${8000 + id}`,
    });
  }
  const nodes = new Map<number, ReplicatedNode<number>>();
  const start = async (id: number) => {
    const port = Number(members.get(id)!.peer.split(":")[1]);
    const n = await ReplicatedNode.start({
      id,
      members,
      dataDir: join(root, `n${id}`),
      listen: { hostname: "127.0.0.1", port },
      tickMs: 20,
      electionTicks: 10,
      snapshotEntries,
      snapshotCatchUpEntries: 5,
    }, new SumLog());
    nodes.set(id, n);
    return n;
  };
  for (const id of members.keys()) await start(id);
  return {
    nodes,
    start,
    leader: () => [...nodes.values()].find((n) => n.isLeader),
    stopAll: async () => {
      for (const n of nodes.values()) await n.stop();
    },
  };
}

Deno.test("a command proposed on a follower is applied on every replica with the same result", async () => {
  const root = await Deno.makeTempDir();
  const g = await group(root);
  try {
    await until("a leader", () => g.leader() !== undefined);
    const leader = g.leader()!;
    const follower = [...g.nodes.values()].find((n) => n !== leader)!;
    // A follower learns the leader from its first append, a moment after
    // the leader knows it leads.
    await until(
      "the follower knows the leader",
      () => follower.status().leader === leader.id,
    );
    assert.equal(follower.status().leaderHttp, `127.0.0.1:${8000 + leader.id}`);
    const sums = [];
    for (const v of [1, 2, 3, 4]) {
      sums.push(await follower.propose(u32(v), AbortSignal.timeout(5000)));
    }
    assert.deepEqual(sums, [1, 3, 6, 10]);
    await until(
      "every replica applies",
      () =>
        [...g.nodes.values()].every((n) =>
          (n.machine as SumLog).values.length === 4
        ),
    );
    for (const n of g.nodes.values()) {
      assert.deepEqual((n.machine as SumLog).values, [1, 2, 3, 4]);
    }
  } finally {
    await g.stopAll();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("losing the leader loses no acknowledged command, and a restarted replica recovers from disk", async () => {
  const root = await Deno.makeTempDir();
  const g = await group(root);
  try {
    await until("a leader", () => g.leader() !== undefined);
    const old = g.leader()!;
    for (let i = 1; i <= 20; i++) {
      await old.propose(u32(i), AbortSignal.timeout(5000));
    }
    await old.stop();
    g.nodes.delete(old.id);
    await until("a new leader", () => g.leader() !== undefined);
    const next = g.leader()!;
    assert.notEqual(next.id, old.id);
    assert.equal(await next.propose(u32(100), AbortSignal.timeout(5000)), 310);
    const back = await g.start(old.id);
    await until(
      "the old leader catches up",
      () => (back.machine as SumLog).values.length === 21,
    );
    assert.deepEqual(
      (back.machine as SumLog).values,
      [...Array.from({ length: 20 }, (_, i) => i + 1), 100],
    );
  } finally {
    await g.stopAll();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a replica that missed compacted entries catches up through a snapshot", async () => {
  const root = await Deno.makeTempDir();
  const g = await group(root, 10);
  try {
    await until("a leader", () => g.leader() !== undefined);
    const leader = g.leader()!;
    const lagging = [...g.nodes.values()].find((n) => n !== leader)!;
    await lagging.stop();
    g.nodes.delete(lagging.id);
    for (let i = 1; i <= 60; i++) {
      await leader.propose(u32(i), AbortSignal.timeout(5000));
    }
    await until("a snapshot", () => leader.status().snapshotIndex >= 40);
    assert.ok(leader.status().firstIndex > 10, "the log prefix is compacted");
    const back = await g.start(lagging.id);
    await until(
      "the lagging replica catches up",
      () => (back.machine as SumLog).values.length === 60,
    );
    assert.equal(
      (back.machine as SumLog).values.reduce((a, b) => a + b, 0),
      1830,
    );
    assert.ok(back.status().snapshotIndex > 0, "it installed a snapshot");
  } finally {
    await g.stopAll();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("transfer of leadership, and no_leader errors carry the leader hint", async () => {
  const root = await Deno.makeTempDir();
  const g = await group(root);
  try {
    await until("a leader", () => g.leader() !== undefined);
    const leader = g.leader()!;
    const follower = [...g.nodes.values()].find((n) => n !== leader)!;
    await until("the follower knows the leader", () => follower.leader !== 0);
    await assert.rejects(
      follower.transferLeadership(undefined, AbortSignal.timeout(1000)),
      (e) =>
        isReplicationError(e, "no_leader") &&
        e.details?.leader === leader.id &&
        e.details?.leaderHttp === `127.0.0.1:${8000 + leader.id}`,
    );
    const to = await leader.transferLeadership(
      follower.id,
      AbortSignal.timeout(10_000),
    );
    assert.equal(to, follower.id);
    await until("the target leads", () => follower.isLeader);
  } finally {
    await g.stopAll();
    await Deno.remove(root, { recursive: true });
  }
});
