// The example of README.md, kept runnable: a plain Map made into a
// replicated state machine with three in-process raft nodes.
import assert from "node:assert/strict";
import {
  MemoryStorage,
  type Message,
  RawNode,
  type ReplicatedStateMachine,
} from "./mod.ts";

/** A plain Map, replicated. `apply` is idempotent by index. */
class ReplicatedMap implements ReplicatedStateMachine {
  applied = 0;
  readonly map = new Map<string, string>();

  apply(index: number, data: Uint8Array): void {
    if (index <= this.applied) return; // replays after a restart are harmless
    this.applied = index;
    if (data.length === 0) return; // raft's own entries (no-ops, conf changes)
    const [key, value] = JSON.parse(new TextDecoder().decode(data));
    this.map.set(key, value);
  }

  snapshot(): Uint8Array {
    return new TextEncoder().encode(JSON.stringify([...this.map]));
  }

  restore(index: number, data: Uint8Array): void {
    this.map.clear();
    for (const [k, v] of JSON.parse(new TextDecoder().decode(data))) {
      this.map.set(k, v);
    }
    this.applied = index;
  }
}

Deno.test("the README example replicates a plain Map across three nodes", () => {
  const peers = [1, 2, 3];
  const servers = peers.map((id) => {
    const storage = new MemoryStorage();
    const node = new RawNode({
      id,
      peers,
      storage,
      electionTick: 10,
      heartbeatTick: 1,
      random: Math.random, // the app injects randomness; the core has none
    });
    return { node, storage, map: new ReplicatedMap() };
  });
  let wire: Message[] = [];

  function handleReadys(): void {
    for (const s of servers) {
      while (s.node.hasReady()) {
        const rd = s.node.ready();
        // 1. Persist first (a real server appends to its log and fsyncs).
        if (rd.snapshot) s.storage.applySnapshot(rd.snapshot);
        s.storage.append(rd.entries);
        if (rd.hardState) s.storage.setHardState(rd.hardState);
        // 2. Then send.
        wire.push(...rd.messages);
        // 3. Apply committed entries (may lag behind: off the critical path).
        if (rd.snapshot) {
          s.map.restore(rd.snapshot.meta.index, rd.snapshot.data);
        }
        for (const e of rd.committedEntries) {
          s.map.apply(e.index, e.type === "normal" ? e.data : new Uint8Array());
        }
        s.node.advance();
      }
    }
  }

  function run(ticks: number): void {
    for (let t = 0; t < ticks; t++) {
      for (const s of servers) s.node.tick();
      do {
        handleReadys();
        const batch = wire;
        wire = [];
        for (const m of batch) servers[m.to - 1]!.node.step(m);
      } while (wire.length > 0 || servers.some((s) => s.node.hasReady()));
    }
  }

  run(50); // elect a leader
  const leader = servers.find((s) => s.node.status().role === "leader")!;
  leader.node.propose(
    new TextEncoder().encode(JSON.stringify(["greeting", "hello"])),
  );
  run(3);
  for (const s of servers) assert.equal(s.map.map.get("greeting"), "hello");
});
