// The read lease is measured on the injected monotonic clock, not in ticks:
// a paused leader's lease runs out while it is stopped, a gap between ticks
// voids it until a fresh quorum round, catch-up ticks do not let a follower
// campaign early, and the clock guard turns lease reads into ReadIndex when
// a clock misbehaves.
import assert from "node:assert/strict";
import type { NodeId } from "./messages.ts";
import type { RaftConfig } from "./raft.ts";
import { TestCluster } from "./_test_cluster.ts";

const TICK = 10; // ms per tick; election timeout 10 ticks = 100 ms, lease 80 ms

/** A cluster on one virtual clock `t` (ms); `rates` skews a node's clocks. */
function timed(
  extra: Partial<RaftConfig> = {},
  rates: Record<number, { mono?: number; wall?: number }> = {},
) {
  const clock = { t: 1000 };
  const c = new TestCluster([1, 2, 3], (id: NodeId) => ({
    tickMs: TICK,
    leaseDriftTicks: 2,
    clock: () => clock.t * (rates[id]?.mono ?? 1),
    wallClock: () => 1.7e12 + clock.t * (rates[id]?.wall ?? 1),
    ...extra,
  }));
  /** Lets `ms` pass, ticking `only` (default all) once per TICK. */
  const run = (ms: number, only?: NodeId[]) => {
    for (let i = 0; i < ms / TICK; i++) {
      clock.t += TICK;
      c.tick(1, only);
    }
  };
  return { c, clock, run };
}

Deno.test("a leader stopped longer than its lease has no lease when it resumes, though it missed every tick", () => {
  const { c, clock, run } = timed();
  c.elect(1);
  run(100);
  assert.ok(c.node(1).leaseValid());
  // SIGSTOP: no tick, no message, but the monotonic clock keeps going.
  clock.t += 500;
  const s = c.node(1).leaseState();
  assert.equal(s.valid, false);
  assert.match(s.reason!, /gap between ticks|expired/);
  // The first heartbeat round after the pause confirms it again.
  run(TICK);
  assert.ok(c.node(1).leaseValid());
});

Deno.test("a gap between ticks shorter than the lease still voids it until a fresh quorum round", () => {
  const { c, clock, run } = timed();
  c.elect(1);
  run(100);
  assert.ok(c.node(1).leaseValid());
  // 30 ms is within the 80 ms lease but beyond the 20 ms gap bound.
  clock.t += 30;
  const s = c.node(1).leaseState();
  assert.equal(s.valid, false);
  assert.match(s.reason!, /a 30 ms gap between ticks/);
  assert.equal(c.node(1).status().stats.tickGaps, 1);
  // Acknowledgements of heartbeats sent before the gap do not restore it.
  c.drop = (m) => m.type === "heartbeatResp";
  run(TICK, [1]);
  assert.equal(c.node(1).leaseValid(), false);
  c.drop = () => false;
  run(TICK, [1]);
  assert.ok(c.node(1).leaseValid());
});

Deno.test("a lease read after a gap goes through a heartbeat round (ReadIndex)", () => {
  const { c, clock, run } = timed({ readOnly: "lease" });
  c.elect(1);
  run(100);
  const states: string[] = [];
  c.onReady = (id, rd) => {
    if (id === 1) states.push(...rd.readStates.map((r) => r.ctx));
  };
  c.node(1).readIndex("before");
  c.settle();
  assert.deepEqual(states, ["before"]);
  clock.t += 30;
  c.drop = (m) => m.type === "heartbeatResp";
  c.node(1).readIndex("after-gap");
  c.settle();
  assert.deepEqual(states, ["before"], "answered from a voided lease");
  c.drop = () => false;
  run(TICK, [1]);
  c.node(1).readIndex("confirmed");
  c.settle();
  assert.ok(states.includes("after-gap") && states.includes("confirmed"));
});

Deno.test("catch-up ticks do not let a follower campaign while the leader's lease may hold", () => {
  const { c, clock, run } = timed();
  c.elect(1);
  run(100);
  const before = c.sent.length;
  // Node 2 gets 40 ticks in one burst at the same instant (ticks ahead of time).
  c.drop = (m) => m.from === 1; // and hears nothing more from the leader
  c.tick(40, [2]);
  const campaigns = c.sent.slice(before).filter((m) =>
    m.from === 2 && (m.type === "preVote" || m.type === "vote")
  );
  assert.equal(campaigns.length, 0, "campaigned inside the leader's lease");
  // Once an election timeout has really passed, it campaigns.
  clock.t += 200;
  c.tick(30, [2]);
  assert.ok(
    c.sent.slice(before).some((m) => m.from === 2 && m.type === "preVote"),
  );
});

Deno.test("a wall clock running fast against the monotonic clock makes the leader refuse lease reads", () => {
  const { c, run } = timed({ readOnly: "lease", clockGuard: {} }, {
    1: { wall: 1.5 },
  });
  c.elect(1);
  run(3000);
  const s = c.node(1).leaseState();
  assert.equal(s.valid, false);
  assert.match(s.reason!, /clock suspect: the wall clock runs at 1\.500x/);
  assert.equal(c.node(1).clockVerdict()?.localOk, false);
  // Lease reads fall back to ReadIndex: no answer without a heartbeat round.
  const states: string[] = [];
  c.onReady = (id, rd) => {
    if (id === 1) states.push(...rd.readStates.map((r) => r.ctx));
  };
  c.drop = (m) => m.type === "heartbeatResp";
  c.node(1).readIndex("r");
  c.settle();
  assert.deepEqual(states, []);
  c.drop = () => false;
  run(TICK);
  assert.deepEqual(states, ["r"]);
});

Deno.test("with sound clocks the guard lets the lease through once the peers were measured", () => {
  const { c, run } = timed({ clockGuard: {} });
  c.elect(1);
  run(500);
  // Not measured over a 2 s window yet: no trusted quorum.
  assert.match(c.node(1).leaseState().reason!, /trusted clocks/);
  run(2500);
  assert.ok(c.node(1).leaseValid());
  const v = c.node(1).clockVerdict()!;
  assert.equal(v.localOk, true);
  assert.ok(v.peers[2]!.trusted && v.peers[3]!.trusted);
  assert.ok(Math.abs(v.peers[2]!.rate! - 1) < 0.01);
});

Deno.test("a follower whose clock runs fast does not count toward the lease", () => {
  const { c, run } = timed({ clockGuard: {} }, {
    3: { mono: 1.5, wall: 1.5 },
  });
  c.elect(1);
  run(3000);
  const v = c.node(1).clockVerdict()!;
  assert.equal(v.peers[3]!.trusted, false);
  assert.match(v.peers[3]!.reason!, /monotonic clock runs at 1\.5/);
  assert.equal(v.peers[2]!.trusted, true);
  assert.ok(c.node(1).leaseValid(), "leader + node 2 are a trusted quorum");
  // Without node 2, node 3's acknowledgements alone keep no lease.
  c.drop = (m) => m.from === 2;
  run(200);
  assert.equal(c.node(1).leaseValid(), false);
  assert.equal(c.node(1).raft.role, "leader");
});

Deno.test("without the guard the same fast follower would count (the guard is what excludes it)", () => {
  const { c, run } = timed({}, { 3: { mono: 1.5, wall: 1.5 } });
  c.elect(1);
  run(3000);
  c.drop = (m) => m.from === 2;
  run(50);
  assert.ok(c.node(1).leaseValid());
});
