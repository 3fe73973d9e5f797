/**
 * The clock guard in simulation: with clocks drifting far past the lease's
 * bound (60% against 2/15), leases without the guard overlap a newer leader
 * (broken_variants_test.ts shows the simulator catching it); with the guard
 * the same scripts never overlap, because followers whose clock rate differs
 * from the leader's are kept out of the lease quorum — and leases are still
 * granted wherever the clocks agree.
 */
import assert from "node:assert/strict";
import { RaftCluster } from "./raft_cluster.ts";
import { isSimError, type SimError } from "./sim_error.ts";

/** Isolates the leader again and again with lease reads on; counts lease grants seen. */
function guardedLeaseScript(
  seed: number,
  clockDrift: number,
  guard = true,
): { error?: SimError; leases: number } {
  const c = new RaftCluster({
    seed,
    nodes: 3,
    clockDrift,
    raft: {
      readOnly: "lease",
      leaseDriftTicks: 2,
      ...(guard ? { clockGuard: { windowMs: 300, maxRateDrift: 0.05 } } : {}),
    },
  });
  let leases = 0;
  try {
    for (let i = 0; i < 20; i++) {
      const l = c.checkOneLeader();
      c.one(`x${i}`, 2, true);
      c.run(400);
      if (c.node(l).raw.leaseValid()) leases++;
      c.disconnect(l);
      c.run(c.prng.int(600));
      c.connect(l);
    }
    return { leases };
  } catch (e) {
    if (isSimError(e)) return { error: e, leases };
    throw e;
  }
}

Deno.test("with the clock guard, clocks drifting past the lease bound never let a lease overlap a newer leader", () => {
  let leases = 0;
  for (let seed = 1; seed <= 40; seed++) {
    const r = guardedLeaseScript(seed, 0.6);
    assert.equal(r.error, undefined, `seed ${seed}: ${r.error?.message}`);
    leases += r.leases;
  }
  // Pairs of nodes whose clocks happen to agree still get leases.
  assert.ok(leases > 0, "the guard refused every lease");
});

Deno.test("the same scripts without the guard let a lease overlap a newer leader, and it is caught", () => {
  let caught: SimError | undefined;
  for (let seed = 1; seed <= 40 && !caught; seed++) {
    caught = guardedLeaseScript(seed, 0.6, false).error;
  }
  assert.ok(caught, "no overlap without the guard: the script proves nothing");
  assert.match(caught.message, /read lease/);
});

Deno.test("with the clock guard and clocks within bounds, leaders hold leases", () => {
  let leases = 0;
  for (let seed = 1; seed <= 10; seed++) {
    const r = guardedLeaseScript(seed, 0.01);
    assert.equal(r.error, undefined, `seed ${seed}: ${r.error?.message}`);
    leases += r.leases;
  }
  assert.ok(leases >= 150, `only ${leases} of 200 checks found a lease`);
});
