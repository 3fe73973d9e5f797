import assert from "node:assert/strict";
import { runQuickSuite } from "./quick_suite.ts";

Deno.test("the tablet suite runs end to end in quick mode and writes its lines", async () => {
  const report = await runQuickSuite("tablet.bench.ts", "tablet.json");
  assert.equal(report.quick, true);
  const strata = report.results.filter((r: { name: string }) =>
    r.name === "strata tablet"
  );
  assert.equal(strata.length, 5);
  for (const r of strata) assert.ok(r.opsPerSec > 0, r.group);
  // With RocksDB's db_bench installed, every line has its ratio.
  if (typeof report.metrics.rocksdb !== "string") {
    assert.equal(report.comparisons.length, 5);
  }
});
