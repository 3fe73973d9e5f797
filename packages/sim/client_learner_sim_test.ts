/**
 * Client learners on production `ReplicatedNode`s (`ReplicaCluster`): each
 * member serves the committed stream from its own raft log
 * (`ReplicatedNode.raftLog()`) through a `CommitStreamHub`; subscribers
 * reach it over a lossy link of their own, switch members on silence, and
 * must see exactly the committed commands.
 */
import assert from "node:assert/strict";
import {
  CommitStreamHub,
  CommitStreamSubscriber,
  type Entry,
  type StreamMessage,
} from "@strata/raft";
import { proposalCommand, type ReplicatedNode } from "@strata/replication";
import { ReplicaCluster } from "./replica_cluster.ts";
import { runSeededAsync, testSeeds } from "./seeded_test_runner.ts";

const FILE = "packages/sim/client_learner_sim_test.ts";
const NAME =
  "client learners follow the committed stream from members through loss, crashes and member switches";

type Packet =
  | { type: "streamSub"; id: string; from: number }
  | { type: "streamAck"; id: string; index: number };

const decoder = new TextDecoder();

Deno.test(NAME, async () => {
  await runSeededAsync(FILE, NAME, testSeeds(3, 30), async (seed) => {
    const c = new ReplicaCluster({ seed, nodes: 3, snapshotInterval: 15 });
    c.setReliable(false);
    const linkRandom = c.prng.fork();
    /** The subscribers' link: 10% loss, 1–27 ms delays (as the raft links). */
    const send = (deliver: () => void) => {
      if (linkRandom.chance(0.1)) return;
      c.scheduler.after(1 + linkRandom.float() * 26, deliver);
    };
    // One hub per running replica: a restarted member starts with no
    // subscribers (they resubscribe).
    const hubs = new Map<
      number,
      { replica: ReplicatedNode<number>; hub: CommitStreamHub }
    >();
    const hubOf = (id: number): CommitStreamHub | undefined => {
      const replica = c.node(id).alive ? c.node(id).replica : undefined;
      if (!replica) return undefined;
      let h = hubs.get(id);
      if (!h || h.replica !== replica) {
        h = {
          replica,
          hub: new CommitStreamHub(replica.raftLog(), { maxBatchBytes: 64 }),
        };
        hubs.set(id, h);
      }
      h.hub.committed(c.node(id).sm.appliedIndex);
      return h.hub;
    };
    const inboxes: Array<(m: StreamMessage) => void> = [];
    const push = (out: StreamMessage[]) => {
      for (const m of out) send(() => inboxes[Number(m.subscriber)]!(m));
    };
    const served = new Map<number, number>();
    const toMember = (id: number, p: Packet) =>
      send(() => {
        const hub = hubOf(id);
        if (!hub) return; // down: the packet is lost
        if (p.type === "streamSub") {
          served.set(id, (served.get(id) ?? 0) + 1);
          push(hub.subscribe(p.id, p.from));
        } else push(hub.ack(p.id, p.index));
      });
    // Members push what they applied since, every 5 ms.
    const pump = () => {
      for (const id of c.nodes.keys()) {
        const hub = hubOf(id);
        if (hub) push(hub.committed(c.node(id).sm.appliedIndex));
      }
      c.scheduler.after(5, pump);
    };
    c.scheduler.after(5, pump);

    // Two subscribers, each attached to one member, switching on silence.
    const subs = [0, 1].map((k) => {
      const got = new Map<number, string>();
      const sub = new CommitStreamSubscriber(
        (e: Entry) => {
          if (e.type === "normal" && e.data.length > 0) {
            got.set(e.index, decoder.decode(proposalCommand(e.data)));
          }
        },
        (snap) => {
          state.snapshot = Math.max(state.snapshot, snap.meta.index);
        },
      );
      const state = { member: (k % 3) + 2, heard: 0, switches: 0, snapshot: 0 };
      const subscribe = () =>
        toMember(state.member, {
          type: "streamSub",
          id: String(k),
          from: sub.applied + 1,
        });
      inboxes[k] = (m) => {
        state.heard = c.scheduler.now;
        let index: number;
        try {
          index = sub.receive(m);
        } catch {
          subscribe(); // a gap: a lost message; resume where we are
          return;
        }
        toMember(state.member, { type: "streamAck", id: String(k), index });
      };
      const watch = () => {
        if (c.scheduler.now - state.heard > 400) {
          state.member = (state.member % 3) + 1;
          state.switches++;
          state.heard = c.scheduler.now;
          subscribe();
        }
        c.scheduler.after(100, watch);
      };
      subscribe();
      c.scheduler.after(100, watch);
      return { sub, got, state };
    });

    for (let i = 0; i < 60; i++) {
      await c.one(`v${i}`, 1, true);
      if (i % 15 === 7) {
        const victim = c.prng.int(3) + 1;
        c.crash(victim);
        await c.run(300);
        c.restart(victim);
      }
    }
    c.setReliable(true);
    const last = await c.one("last", 3, true);
    await c.run(3000);
    for (const s of subs) {
      assert.ok(
        s.sub.applied >= last,
        `subscriber at ${s.sub.applied} < ${last}`,
      );
      for (const [index, v] of s.got) {
        const [n, agreed] = c.nCommitted(index);
        if (n > 0) assert.equal(v, agreed, `subscriber saw ${v} at ${index}`);
      }
      // It saw the last entry itself, unless a snapshot covered it.
      if (s.state.snapshot < last) assert.equal(s.got.get(last), "last");
    }
    assert.ok(served.size >= 1);
  });
});
