/**
 * Deliberately broken variants of raft (and of the persistence contract)
 * must be caught by the simulator: these tests show the harness can fail.
 * Each pairs the broken run with the same script on the correct code.
 */
import assert from "node:assert/strict";
import type { RaftConfig } from "@strata/raft";
import { runKvSimulation } from "./kv_simulation.ts";
import { RaftCluster } from "./raft_cluster.ts";
import { isSimError, type SimError } from "./sim_error.ts";

/** Makes `id` campaign until it leads a term above `minTerm`. */
function forceLeader(c: RaftCluster, id: number, minTerm: number): boolean {
  const node = c.node(id);
  const leads = () =>
    node.raw.raft.role === "leader" && node.raw.raft.term > minTerm;
  for (let i = 0; i < 10; i++) {
    node.raw.campaign();
    c.pump(node);
    if (c.runUntil(leads, 300)) return true;
  }
  return false;
}

/**
 * Figure 8 of the Raft paper, step by step: an entry of an old term is
 * replicated to a majority by a later leader, which then crashes; a node
 * holding a conflicting entry of a newer term can still win and overwrite
 * it. Counting replicas of old-term entries commits it anyway.
 * @returns the violation the simulator saw, "ok" when the script ran to
 * its end without one, "skipped" when an election could not be forced.
 */
function figure8Script(
  seed: number,
  unsafe: RaftConfig["unsafe"],
): SimError | "ok" | "skipped" {
  // One entry per AppendEntries, so the old-term entry is acknowledged
  // before the new leader's own entry.
  const c = new RaftCluster({
    seed,
    nodes: 3,
    raft: { maxSizePerMsg: 0, unsafe },
  });
  try {
    const s1 = c.checkOneLeader();
    c.one("a", 3, false);
    const [s2, s3] = [1, 2, 3].filter((i) => i !== s1) as [number, number];
    // s1 appends x at i, replicated nowhere.
    c.disconnect(s1);
    const x = c.start(s1, "x");
    assert.ok(x.isLeader);
    // s2 leads a newer term; its entry at i reaches nobody.
    const t1 = c.node(s1).raw.raft.term;
    if (!forceLeader(c, s2, t1)) return "skipped";
    c.disconnect(s2);
    const t2 = c.node(s2).raw.raft.term;
    // s1 comes back, leads with s3 and gets x onto s3.
    c.connect(s1);
    if (!forceLeader(c, s1, t2)) return "skipped";
    c.runUntil(() => c.node(s1).raw.raft.log.committed >= x.index, 3000);
    c.disconnect(s1);
    // s2 returns: it may win s3's vote only if s3 lacks s1's newer entry.
    c.connect(s2);
    forceLeader(c, s2, c.node(s1).raw.raft.term);
    c.run(2000);
    for (const id of [s1, s2, s3]) c.connect(id);
    c.run(2000);
    void s3;
    return "ok";
  } catch (e) {
    if (isSimError(e)) return e;
    throw e;
  }
}

Deno.test("figure 8: committing by counting replicas of old-term entries is caught as divergence", () => {
  let caught: SimError | undefined;
  for (let seed = 1; seed <= 5 && !caught; seed++) {
    const r = figure8Script(seed, { commitPreviousTermEntries: true });
    if (typeof r !== "string") caught = r;
  }
  assert.ok(caught, "the simulator missed the Figure 8 bug");
  assert.equal(caught.code, "divergence");
});

Deno.test("figure 8: the same script on the correct commit rule finds nothing", () => {
  for (let seed = 1; seed <= 5; seed++) {
    assert.equal(figure8Script(seed, undefined), "ok");
  }
});

Deno.test("voting without the log check is caught by the randomized KV simulation", () => {
  let caught: SimError | undefined;
  let seed = 1;
  for (; seed <= 100 && !caught; seed++) {
    try {
      runKvSimulation({ seed, unsafe: { voteWithoutLogCheck: true } });
    } catch (e) {
      if (!isSimError(e)) throw e;
      caught = e;
    }
  }
  assert.ok(caught, "100 seeds did not catch voting without the log check");
  assert.equal(caught.seed, seed - 1);
  assert.match(
    caught.replay ?? "",
    /STRATA_SEED=\d+ deno test -A packages\/sim\/kv_simulation_test\.ts/,
  );
});

/**
 * A follower acknowledges an entry before fsyncing it, then loses it in a
 * crash; with the old leader gone, the two nodes left elect a leader that
 * never had the committed entry.
 */
function ackBeforeSyncScript(
  seed: number,
  unsafe: boolean,
): SimError | undefined {
  const c = new RaftCluster({
    seed,
    nodes: 3,
    diskLatencyMs: [5, 5],
    unsafeSendBeforeSync: unsafe,
  });
  try {
    const l = c.checkOneLeader();
    c.one("a", 3, false);
    const [f1, f2] = [1, 2, 3].filter((i) => i !== l) as [number, number];
    c.disconnect(f2);
    const x = c.start(l, "x");
    assert.ok(x.isLeader);
    const leader = c.node(l);
    const follower = c.node(f1);
    c.runUntil(() => leader.raw.raft.log.committed >= x.index, 1000);
    if (follower.busy) c.crash(f1);
    c.runUntil(() => leader.sm.applied >= x.index, 1000);
    c.crash(l);
    c.connect(f2);
    c.restart(f1);
    c.run(3000);
    c.one("after", 2, true);
    return undefined;
  } catch (e) {
    if (isSimError(e)) return e;
    throw e;
  }
}

Deno.test("acknowledging before fsync loses committed entries and is caught", () => {
  let caught: SimError | undefined;
  for (let seed = 1; seed <= 20 && !caught; seed++) {
    caught = ackBeforeSyncScript(seed, true);
  }
  assert.ok(caught, "the simulator missed acknowledgements before fsync");
  assert.equal(caught.code, "divergence");
});

Deno.test("persisting before acknowledging keeps the committed entry through the same crashes", () => {
  for (let seed = 1; seed <= 20; seed++) {
    assert.equal(ackBeforeSyncScript(seed, false), undefined);
  }
});

/** Isolates the leader again and again with lease reads on. */
function leaseScript(seed: number, clockDrift: number): SimError | "ok" {
  const c = new RaftCluster({
    seed,
    nodes: 3,
    clockDrift,
    raft: { readOnly: "lease", leaseDriftTicks: 2 },
  });
  try {
    for (let i = 0; i < 20; i++) {
      const l = c.checkOneLeader();
      c.one(`x${i}`, 2, true);
      c.disconnect(l);
      c.run(c.prng.int(600));
      c.connect(l);
    }
    return "ok";
  } catch (e) {
    if (isSimError(e)) return e;
    throw e;
  }
}

Deno.test("clocks drifting past the lease bound let two leaders overlap, and it is caught", () => {
  // 60% rate difference against a bound of 2/15 ticks (13%).
  let caught: SimError | undefined;
  for (let seed = 1; seed <= 40 && !caught; seed++) {
    const r = leaseScript(seed, 0.6);
    if (r !== "ok") caught = r;
  }
  assert.ok(caught, "an overlapping lease went unnoticed");
  assert.match(caught.message, /read lease/);
});

Deno.test("clocks within the drift bound never let a lease overlap a newer leader", () => {
  for (let seed = 1; seed <= 10; seed++) {
    assert.equal(leaseScript(seed, 0.04), "ok");
  }
});
