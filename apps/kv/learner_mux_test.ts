/**
 * Multiplexed learners (follow_group.ts against learner_server.ts, in
 * process over real TCP): many subscriptions over one connection get one
 * multi-packet blob per pump, every replica equals its member, and when the
 * member goes away the group resumes at another one with no gap and no
 * duplicate.
 */
import assert from "node:assert/strict";
import { FollowGroup } from "./follow_group.ts";
import type { KvCommand } from "./kv_commands.ts";
import { KvStateMachine } from "./kv_state_machine.ts";
import type { ReplicaUpdate } from "./learner_replica.ts";
import { LearnerServer } from "./learner_server.ts";
import { WatchHub } from "./watch_hub.ts";
import { connectTcp, isTransportError } from "@strata/transport";
import {
  type LearnerMessages,
  learnerMessages,
  Subscribe,
  SubscribeMany,
} from "./learner_messages.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

/** A member's state and watch history, fed the shared log as KvReplica does. */
class Member {
  readonly store = new KvStateMachine();
  readonly watches = new WatchHub(10_000);
  readonly server: LearnerServer;
  constructor() {
    this.server = LearnerServer.listen(this.store, this.watches, {
      hostname: "127.0.0.1",
      port: 0,
      heartbeatMs: 200,
    });
  }
  get address(): string {
    return `127.0.0.1:${this.server.port}`;
  }
  apply(index: number, c: KvCommand): void {
    const out = this.store.apply(index, c);
    if (out) this.watches.publish(out.events);
    this.watches.advanceTo(index);
  }
}

function command(i: number): KvCommand {
  const key = `${["a", "b", "c"][i % 3]}/${i % 7}`;
  return i % 5 === 4
    ? { op: "delete", key }
    : { op: "put", key, value: bytes(`v${i}`) };
}

Deno.test({
  name:
    "120 subscriptions over one connection: one packed blob per pump, replicas equal to the member, resumed at another member without gaps after the first closes",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const a = new Member();
    const b = new Member();
    let index = 0;
    const write = (n: number) => {
      for (let k = 0; k < n; k++) {
        index++;
        a.apply(index, command(index));
        b.apply(index, command(index));
      }
    };
    write(30);
    // Three prefixes, in runs, and some subscriptions from a revision.
    const prefixes = ["a/", "b/", ""];
    const logs: ReplicaUpdate[][] = [];
    const subs = Array.from({ length: 120 }, (_, i) => {
      const log: ReplicaUpdate[] = [];
      logs.push(log);
      return {
        prefix: prefixes[Math.floor(i / 40)]!,
        from: i % 40 === 39 ? 20 : undefined,
        onUpdate: (u: ReplicaUpdate) => log.push(u),
      };
    });
    const group = await FollowGroup.start(subs, {
      discover: () => Promise.resolve([a.address, b.address]),
      idleTimeoutMs: 2000,
      startTimeoutMs: 10_000,
    });
    try {
      const check = async (member: Member) => {
        await Promise.all(
          group.replicas.map((r) => r.waitFor(index, { timeoutMs: 10_000 })),
        );
        group.replicas.forEach((r, i) => {
          assert.equal(r.revision, index);
          if (subs[i]!.from !== undefined) return; // holds changes only
          assert.deepEqual(
            r.scan().map((e) => [e.key, e.value, e.revision]),
            member.store.range(r.prefix, undefined, Infinity).map((
              kv,
            ) => [kv.key, kv.value, kv.modRevision]),
          );
        });
      };
      await check(a);
      for (let round = 0; round < 10; round++) {
        write(5);
        await new Promise((r) => setTimeout(r, 10));
      }
      await check(a);
      assert.equal(group.member, a.address);
      const stats = a.server.stats();
      assert.equal(stats.learners, 120);
      assert.equal(stats.muxConnections, 1);
      assert.ok(stats.packedBlobs >= 2, `${stats.packedBlobs} blobs`);
      // 40 equal packets per prefix: the blobs are a small part of them.
      assert.ok(
        stats.packedBytes * 5 < stats.unpackedBytes,
        `packed ${stats.packedBytes} of ${stats.unpackedBytes} bytes`,
      );

      // The first member goes away: the whole group moves on and resumes.
      await a.server.close();
      write(25);
      await check(b);
      assert.equal(group.member, b.address);
      assert.ok(group.reconnects >= 1);
      logs.forEach((log, i) => {
        assert.equal(log[0]!.snapshot, subs[i]!.from === undefined);
        for (let k = 1; k < log.length; k++) {
          assert.equal(log[k]!.from, log[k - 1]!.to + 1, "no gap, no repeat");
          assert.equal(log[k]!.snapshot, false);
        }
      });
    } finally {
      await group.close();
      await a.server.close();
      await b.server.close();
    }
  },
});

Deno.test({
  name:
    "the learner port takes one Subscribe or SubscribeMany per connection, and no empty SubscribeMany",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const m = new Member();
    const dial = () =>
      connectTcp<LearnerMessages>({
        hostname: "127.0.0.1",
        port: m.server.port,
      }, { set: learnerMessages });
    const empty = await dial();
    const c = await dial();
    try {
      // Invalid on the wire: the member drops the connection.
      await assert.rejects(empty.call(SubscribeMany, { subscriptions: [] }));
      await c.call(SubscribeMany, {
        subscriptions: [{ prefix: "a/", from: 0 }],
      });
      await assert.rejects(
        c.call(Subscribe, { prefix: "a/", from: 0 }),
        (e) => isTransportError(e, "protocol_error"),
      );
      await assert.rejects(
        c.call(SubscribeMany, { subscriptions: [{ prefix: "b/", from: 0 }] }),
        (e) => isTransportError(e, "protocol_error"),
      );
      assert.equal(m.server.stats().learners, 1);
    } finally {
      await empty.close();
      await c.close();
      await m.server.close();
    }
  },
});
