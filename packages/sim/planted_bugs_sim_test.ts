import assert from "node:assert/strict";
import type { PlantedBug } from "@strata/replication";
import { runReplicatedKvSimulation } from "./replicated_kv_sim.ts";

/**
 * Each planted bug of packages/replication must be found within this many
 * seeds (from seed 1); the measured first finding seeds are in the README.
 */
const WITHIN = 60;

const found: PlantedBug[] = [
  "ack_before_fsync",
  "lease_counts_ticks",
  "read_index_skips_quorum",
];

for (const bug of found) {
  Deno.test(`the ReplicatedNode simulation finds the planted bug ${bug} within ${WITHIN} seeds`, async () => {
    for (let seed = 1; seed <= WITHIN; seed++) {
      const r = await runReplicatedKvSimulation({ seed, plantedBug: bug });
      if (r.ok) continue;
      console.log(
        `${bug}: found by seed ${seed} (${r.code}): ${
          r.failure!.split("\n")[0]!.slice(0, 160)
        }\n  replay: ${r.replay}`,
      );
      assert.match(r.replay, new RegExp(`--seed ${seed} --bug ${bug}$`));
      // The twin: the same seed on the correct code finds nothing.
      const twin = await runReplicatedKvSimulation({ seed });
      assert.ok(twin.ok, `seed ${seed} fails without the bug: ${twin.failure}`);
      return;
    }
    assert.fail(`${bug} was not found in ${WITHIN} seeds`);
  });
}
