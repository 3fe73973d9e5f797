import assert from "node:assert/strict";
import type { PlantedBug } from "@strata/replication";
import { runReplicatedKvSimulation } from "./replicated_kv_sim.ts";
import { LONG } from "./seeded_test_runner.ts";

/**
 * Each planted bug of packages/replication must be found within this many
 * seeds (from seed 1); the first finding seeds measured are in the README.
 */
const bugs: Array<{ bug: PlantedBug; within: number; long?: boolean }> = [
  { bug: "read_index_skips_quorum", within: 30 },
  { bug: "lease_counts_ticks", within: 30 },
  { bug: "vote_before_fsync", within: 30 },
  { bug: "ack_before_fsync", within: 30 },
  { bug: "apply_before_persist", within: 30 },
];

for (const { bug, within, long } of bugs) {
  Deno.test({
    name:
      `the ReplicatedNode simulation finds the planted bug ${bug} within ${within} seeds`,
    ignore: long && !LONG,
    fn: async () => {
      for (let seed = 1; seed <= within; seed++) {
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
        assert.ok(
          twin.ok,
          `seed ${seed} fails without the bug: ${twin.failure}`,
        );
        return;
      }
      assert.fail(`${bug} was not found in ${within} seeds`);
    },
  });
}
