import assert from "node:assert/strict";
import { join } from "node:path";
import { freePort } from "@strata/process";
import { until } from "./_test_until.ts";
import {
  type CommandStateMachine,
  isReplicationError,
  ReplicatedNode,
} from "./mod.ts";

/** Keeps every command's first byte; apply returns how many it holds. */
class Bytes implements CommandStateMachine<number> {
  appliedIndex = 0;
  values: number[] = [];
  apply(index: number, command: Uint8Array): number {
    this.appliedIndex = index;
    return this.values.push(command[0]!);
  }
  skip(index: number): void {
    this.appliedIndex = index;
  }
  snapshot(): Uint8Array {
    return new Uint8Array(this.values);
  }
  restore(data: Uint8Array, index: number): void {
    this.values = [...data];
    this.appliedIndex = index;
  }
}

const alone = (dataDir: string) => ({
  id: 1,
  members: new Map([[1, { peer: "" }]]),
  dataDir,
  // The first tick comes after a minute, the election timeout after ten:
  // leading within the test means leading without either.
  tickMs: 60_000,
  electionTicks: 10,
  segmentBytes: 1 << 20,
});

Deno.test("a one-member group without a raft port leads at once, commits on its own fsync and keeps its data", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const life of [1, 2]) {
      const m = new Bytes();
      const n = await ReplicatedNode.start(alone(join(dir, "n1")), m);
      try {
        assert.equal(n.peerPort, 0);
        await until("the sole voter to lead", () => n.isLeader, 30_000);
        const got = await Promise.all(
          Array.from(
            { length: 50 },
            (_, i) =>
              n.propose(
                new Uint8Array([life * 50 + i]),
                AbortSignal.timeout(5000),
              ),
          ),
        );
        assert.equal(Math.max(...got), life * 50);
        assert.equal(m.values.length, life * 50);
      } finally {
        await n.stop();
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a replica without a raft port refuses other members with a clear error", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      ReplicatedNode.start({
        ...alone(join(dir, "two")),
        members: new Map([[1, { peer: "" }], [2, {
          peer: `127.0.0.1:${freePort()}`,
        }]]),
      }, new Bytes()),
      (e) =>
        isReplicationError(e, "bad_request") && /raft port/.test(e.message),
    );
    const n = await ReplicatedNode.start(alone(join(dir, "n1")), new Bytes());
    try {
      await until("the sole voter to lead", () => n.isLeader, 30_000);
      await assert.rejects(
        n.changeMembers(
          [{ type: "addLearner", nodeId: 2 }],
          { 2: { peer: `127.0.0.1:${freePort()}` } },
          AbortSignal.timeout(5000),
        ),
        (e) =>
          isReplicationError(e, "bad_request") &&
          /listen address/.test(e.message),
      );
      assert.deepEqual(n.members().map((m) => m.id), [1]);
    } finally {
      await n.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
