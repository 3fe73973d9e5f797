/**
 * The clock guard in simulation, on production `ReplicatedNode`s
 * (`ReplicaCluster`, with the lease check on every event): with clocks
 * drifting far past the guard's bound (60% against 5%), leases without the
 * guard overlap a newer leader and the check catches it; with the guard the
 * same scripts never overlap, because followers whose clock rate differs
 * from the leader's are kept out of the lease quorum — and leases are still
 * granted wherever the clocks agree.
 */
import assert from "node:assert/strict";
import { ReplicaCluster } from "./replica_cluster.ts";
import { LONG } from "./seeded_test_runner.ts";
import { isSimError, type SimError } from "./sim_error.ts";

/** Seeds of the drifting scripts (40 under STRATA_LONG, as before the move onto ReplicatedNode). */
const SEEDS = LONG ? 40 : 10;

/** Isolates the leader again and again; counts the leases seen. */
async function guardedLeaseScript(
  seed: number,
  clockDrift: number,
  guard = true,
): Promise<{ error?: SimError; leases: number }> {
  const c = new ReplicaCluster({
    seed,
    nodes: 3,
    clockDrift,
    checkLeases: true,
    // A short window so the guard measures its peers within one script step.
    clockGuard: guard ? { windowMs: 300, maxRateDrift: 0.05 } : false,
  });
  let leases = 0;
  try {
    for (let i = 0; i < 20; i++) {
      const l = await c.checkOneLeader();
      await c.one(`x${i}`, 2, true);
      await c.run(400);
      if (c.node(l).replica?.leaseValid()) leases++;
      c.disconnect(l);
      await c.run(c.prng.int(600));
      c.connect(l);
    }
    return { leases };
  } catch (e) {
    if (isSimError(e)) return { error: e, leases };
    throw e;
  }
}

Deno.test("with the clock guard, clocks drifting past the lease bound never let a lease overlap a newer leader", async () => {
  let leases = 0;
  for (let seed = 1; seed <= SEEDS; seed++) {
    const r = await guardedLeaseScript(seed, 0.6);
    assert.equal(r.error, undefined, `seed ${seed}: ${r.error?.message}`);
    leases += r.leases;
  }
  // Pairs of nodes whose clocks happen to agree still get leases.
  assert.ok(leases > 0, "the guard refused every lease");
});

Deno.test("the same scripts without the guard let a lease overlap a newer leader, and it is caught", async () => {
  let caught: SimError | undefined;
  for (let seed = 1; seed <= SEEDS && !caught; seed++) {
    caught = (await guardedLeaseScript(seed, 0.6, false)).error;
  }
  assert.ok(caught, "no overlap without the guard: the script proves nothing");
  assert.match(caught.message, /read lease/);
});

Deno.test("with the clock guard and clocks within bounds, leaders hold leases", async () => {
  let leases = 0;
  const seeds = LONG ? 10 : 3;
  for (let seed = 1; seed <= seeds; seed++) {
    const r = await guardedLeaseScript(seed, 0.01);
    assert.equal(r.error, undefined, `seed ${seed}: ${r.error?.message}`);
    leases += r.leases;
  }
  assert.ok(
    leases >= 15 * seeds,
    `only ${leases} of ${20 * seeds} checks found a lease`,
  );
});
