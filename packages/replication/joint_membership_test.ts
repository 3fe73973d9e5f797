// Replacing two of three replicas in one joint membership change, the new
// members' addresses carried in the change's context: the new members learn
// each other's addresses from the log alone, and go on without the old ones.
import assert from "node:assert/strict";
import { join } from "node:path";
import { freePort } from "@strata/process";
import { until } from "./_test_until.ts";
import { type CommandStateMachine, ReplicatedNode } from "./mod.ts";
import { readMemberAddresses } from "./member_addresses_file.ts";

class Counter implements CommandStateMachine<number> {
  appliedIndex = 0;
  total = 0;
  apply(index: number, command: Uint8Array): number {
    this.appliedIndex = index;
    return this.total += command[0]!;
  }
  skip(index: number): void {
    this.appliedIndex = index;
  }
  snapshot(): Uint8Array {
    return new TextEncoder().encode(String(this.total));
  }
  restore(data: Uint8Array, index: number): void {
    this.total = Number(new TextDecoder().decode(data));
    this.appliedIndex = index;
  }
}

/**
 * Replicas 1–3 (the initial members) and spares 4 and 5 on free ports under
 * a temp dir; every replica starts knowing only the initial list (the
 * spares are told nothing about each other). `snapshotEntries` as given.
 */
async function jointCell(prefix: string, snapshotEntries?: number) {
  const root = await Deno.makeTempDir({ prefix });
  const initial = new Map<number, { peer: string }>();
  for (const id of [1, 2, 3]) {
    initial.set(id, { peer: `127.0.0.1:${freePort()}` });
  }
  const extra = new Map<number, { peer: string }>();
  for (const id of [4, 5]) extra.set(id, { peer: `127.0.0.1:${freePort()}` });
  const nodes = new Map<number, ReplicatedNode<number>>();
  const start = async (id: number) => {
    const addr = initial.get(id) ?? extra.get(id)!;
    const n = await ReplicatedNode.start({
      id,
      members: initial,
      join: !initial.has(id),
      dataDir: join(root, `n${id}`),
      listen: {
        hostname: "127.0.0.1",
        port: Number(addr.peer.split(":")[1]),
      },
      tickMs: 20,
      electionTicks: 10,
      ...(snapshotEntries === undefined ? {} : { snapshotEntries }),
    }, new Counter());
    nodes.set(id, n);
    return n;
  };
  const leader = () => [...nodes.values()].find((n) => n.isLeader);
  const stopAll = async () => {
    for (const n of nodes.values()) await n.stop();
    await Deno.remove(root, { recursive: true }).catch(() => {});
  };
  return { root, extra, nodes, start, leader, stopAll };
}

Deno.test("two of three replicas are replaced in one joint change; the new ones learn each other's addresses from its context", async () => {
  const { root, extra, nodes, start, leader, stopAll } = await jointCell(
    "strata-joint-",
  );
  try {
    for (const id of [1, 2, 3]) await start(id);
    await until("a leader", () => leader() !== undefined);
    assert.equal(
      await leader()!.propose(new Uint8Array([1]), AbortSignal.timeout(5000)),
      1,
    );
    for (const id of [4, 5]) await start(id);
    assert.equal(nodes.get(4)!.address(5), undefined);

    const l = leader()!;
    // A change that would leave no voter is refused at once, not timed out.
    await assert.rejects(
      l.changeMembers(
        [1, 2, 3].map((nodeId) => ({ type: "removeNode" as const, nodeId })),
        {},
        AbortSignal.timeout(10_000),
      ),
      { code: "bad_request", message: /no voter/ },
    );
    const removed = [1, 2, 3].filter((id) => id !== l.id).slice(0, 2);
    await l.changeMembers(
      [
        { type: "addNode", nodeId: 4 },
        { type: "addNode", nodeId: 5 },
        ...removed.map((nodeId) => ({ type: "removeNode" as const, nodeId })),
      ],
      { 4: extra.get(4)!, 5: extra.get(5)! },
      AbortSignal.timeout(10_000),
    );
    const voters = [l.id, 4, 5].sort();
    assert.deepEqual(l.confState(), { voters, learners: [] });
    await until(
      "the new members apply the change",
      () =>
        [4, 5].every((id) =>
          nodes.get(id)!.confState().voters.join() === voters.join()
        ),
    );
    // Node 4 learned node 5's address from the log, and kept it on disk.
    assert.equal(nodes.get(4)!.address(5)?.peer, extra.get(5)!.peer);
    assert.equal(
      (await readMemberAddresses(join(root, "n4")))["5"]?.peer,
      extra.get(5)!.peer,
    );

    // The removed replicas go; the old leader too: 4 and 5 carry on alone
    // (a majority of {leader, 4, 5}), reaching each other by the learned addresses.
    for (const id of [...removed, l.id]) {
      await nodes.get(id)!.stop();
      nodes.delete(id);
    }
    await until("a new leader among 4 and 5", () => leader() !== undefined);
    assert.equal(
      await leader()!.propose(new Uint8Array([2]), AbortSignal.timeout(5000)),
      3,
    );
  } finally {
    await stopAll();
  }
});

Deno.test("a replica down while two members were added learns their addresses from their announcements and is counted in their quorum (fails without them: no leader)", async () => {
  // Snapshots soon: the down replica catches up from one that covers the
  // change, so the entry with the addresses never reaches it.
  const { extra, nodes, start, leader, stopAll } = await jointCell(
    "strata-joint-down-",
    10,
  );
  const propose = async (n: number) => {
    for (let i = 0; i < n; i++) {
      await leader()!.propose(new Uint8Array([1]), AbortSignal.timeout(5000));
    }
  };
  try {
    for (const id of [1, 2, 3]) await start(id);
    await until("a leader", () => leader() !== undefined);
    const l = leader()!;
    const [down, gone] = [1, 2, 3].filter((id) => id !== l.id);
    await nodes.get(down!)!.stop();
    nodes.delete(down!);
    for (const id of [4, 5]) await start(id);
    // {l, down, 4, 5}: l, 4 and 5 are a quorum while `down` is down.
    await l.changeMembers(
      [
        { type: "addNode", nodeId: 4 },
        { type: "addNode", nodeId: 5 },
        { type: "removeNode", nodeId: gone! },
      ],
      { 4: extra.get(4)!, 5: extra.get(5)! },
      AbortSignal.timeout(10_000),
    );
    await nodes.get(gone!)!.stop();
    nodes.delete(gone!);
    await propose(25);
    const f = await start(down!);
    assert.equal(f.address(4), undefined, "it was never told");
    // Without the old leader, {down, 4, 5} must answer each other.
    await l.stop();
    nodes.delete(l.id);
    await until(
      "a leader among the remaining three",
      () => leader() !== undefined,
      20_000,
    );
    await propose(1);
    await until("the returned replica applies it", () => {
      const a = [...nodes.values()].map((n) => n.machine.appliedIndex);
      return f.machine.appliedIndex === Math.max(...a);
    });
    assert.equal(f.address(4)?.peer, extra.get(4)!.peer);
    assert.equal(f.address(5)?.peer, extra.get(5)!.peer);
    assert.deepEqual(f.confState().voters, [down!, 4, 5, l.id].sort());
  } finally {
    await stopAll();
  }
});
