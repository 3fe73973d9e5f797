import assert from "node:assert/strict";
import {
  CommitStreamHub,
  CommitStreamSubscriber,
  type Entry,
  type NodeId,
  type StreamMessage,
} from "@strata/raft";
import { type AppPacket, RaftCluster, type SimNode } from "./raft_cluster.ts";
import { runSeeded, testSeeds } from "./seeded_test_runner.ts";

const FILE = "packages/sim/client_learner_sim_test.ts";
const NAME =
  "client learners follow the committed stream from members through loss, crashes and member switches";

interface Sub extends AppPacket {
  type: "streamSub";
  id: string;
  from: number;
}
interface Ack extends AppPacket {
  type: "streamAck";
  id: string;
  index: number;
}
interface Push extends AppPacket {
  type: "streamPush";
  m: StreamMessage;
}

const SUB_BASE = 500;

Deno.test(NAME, () => {
  runSeeded(FILE, NAME, testSeeds(3, 30), (seed) => {
    const hubs = new Map<NodeId, { inc: number; hub: CommitStreamHub }>();
    const hubOf = (node: SimNode) => {
      let h = hubs.get(node.id);
      if (!h || h.inc !== node.incarnation) {
        // A restarted member starts with no subscribers: they resubscribe.
        h = {
          inc: node.incarnation,
          hub: new CommitStreamHub(node.storage, { maxBatchBytes: 64 }),
        };
        hubs.set(node.id, h);
      }
      return h.hub;
    };
    const push = (node: SimNode, out: StreamMessage[]) => {
      for (const m of out) {
        const to = SUB_BASE + Number(m.subscriber);
        c.net.send(node.id, to, { type: "streamPush", m } as Push);
      }
    };
    const served = new Map<NodeId, number>();
    const c: RaftCluster = new RaftCluster({
      seed,
      nodes: 3,
      snapshotInterval: 15,
      onApply(node) {
        push(node, hubOf(node).committed(node.sm.applied));
      },
      onPacket(node, p) {
        const hub = hubOf(node);
        hub.committed(node.sm.applied);
        if (p.type === "streamSub") {
          const s = p as Sub;
          served.set(node.id, (served.get(node.id) ?? 0) + 1);
          push(node, hub.subscribe(s.id, s.from));
        } else if (p.type === "streamAck") {
          const a = p as Ack;
          push(node, hub.ack(a.id, a.index));
        }
      },
    });
    c.setReliable(false);

    // Two subscribers, each attached to one member, switching on silence.
    const subs = [0, 1].map((k) => {
      const got = new Map<number, string>();
      const sub = new CommitStreamSubscriber(
        (e: Entry) => {
          if (e.type === "normal" && e.data.length > 0) {
            got.set(e.index, new TextDecoder().decode(e.data));
          }
        },
        (snap) => {
          state.snapshot = Math.max(state.snapshot, snap.meta.index);
        },
      );
      const state = { member: (k % 3) + 2, heard: 0, switches: 0, snapshot: 0 };
      const me = SUB_BASE + k;
      const subscribe = () =>
        c.net.send(me, state.member, {
          type: "streamSub",
          id: String(k),
          from: sub.applied + 1,
        } as Sub);
      c.net.register(me, (m) => {
        const p = m as Push;
        if (p.type !== "streamPush") return;
        state.heard = c.scheduler.now;
        let index: number;
        try {
          index = sub.receive(p.m);
        } catch {
          subscribe(); // a gap: a lost message; resume where we are
          return;
        }
        c.net.send(me, state.member, {
          type: "streamAck",
          id: String(k),
          index,
        } as Ack);
      });
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
      c.one(`v${i}`, 1, true);
      if (i % 15 === 7) {
        const victim = c.prng.int(3) + 1;
        c.crash(victim);
        c.run(300);
        c.restart(victim);
      }
    }
    c.setReliable(true);
    const last = c.one("last", 3, true);
    c.run(3000);
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
