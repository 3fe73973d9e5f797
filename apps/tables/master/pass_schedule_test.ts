import { strictEqual } from "node:assert/strict";
import {
  FULL_PASS_MS,
  fullPassPeriod,
  needsFullPass,
} from "./pass_schedule.ts";
import { DEFAULT_LOAD_POLICY } from "./load_plan.ts";

const calm = {
  changed: false,
  quiet: true,
  watching: true,
  sinceFullMs: 10,
  sweepDue: false,
};

Deno.test("a tick is skipped only when nothing changed, the last pass was quiet, the watch runs, no sweep is due and the period is not up", () => {
  strictEqual(needsFullPass(calm, 5000), false);
  strictEqual(needsFullPass({ ...calm, changed: true }, 5000), true);
  strictEqual(needsFullPass({ ...calm, quiet: false }, 5000), true);
  strictEqual(needsFullPass({ ...calm, watching: false }, 5000), true);
  strictEqual(needsFullPass({ ...calm, sweepDue: true }, 5000), true);
  strictEqual(needsFullPass({ ...calm, sinceFullMs: 5000 }, 5000), true);
  strictEqual(needsFullPass({ ...calm, sinceFullMs: Infinity }, 5000), true);
});

Deno.test("the safety-net period samples a hot or cold tablet three times before it splits or merges", () => {
  // The defaults: split after 30 s, merges off.
  strictEqual(fullPassPeriod(1000, DEFAULT_LOAD_POLICY), FULL_PASS_MS);
  const p = { ...DEFAULT_LOAD_POLICY, splitAfterMs: 1500 };
  strictEqual(fullPassPeriod(300, p), 500);
  strictEqual(fullPassPeriod(300, { ...p, splitOps: 0 }), FULL_PASS_MS);
  strictEqual(
    fullPassPeriod(300, {
      ...p,
      splitOps: 0,
      mergeBytes: 1,
      mergeAfterMs: 2100,
    }),
    700,
  );
  // Never below the tick.
  strictEqual(fullPassPeriod(1000, p), 1000);
  // Splits by size read the servers' reports at least every second.
  strictEqual(fullPassPeriod(300, DEFAULT_LOAD_POLICY, 1 << 20), 1000);
  strictEqual(fullPassPeriod(300, DEFAULT_LOAD_POLICY, 0), FULL_PASS_MS);
});
