import assert from "node:assert/strict";
import { percentile, Suite } from "./harness.ts";
import { runQuickSuite } from "./quick_suite.ts";

Deno.test("a suite records results and ratios and writes its JSON report", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const suite = new Suite("smoke", "harness self-test");
    let n = 0;
    await suite.bench("sum", "loop", () => {
      for (let i = 0; i < 100; i++) n += i;
    }, { bytes: 8 });
    suite.record({
      group: "sum",
      name: "fixed",
      opsPerSec: 10,
      meanNs: 1e8,
      p50Ns: 1e8,
      p99Ns: 1e8,
      samples: 1,
    });
    const c = suite.compare(
      "loop vs fixed",
      "time",
      suite.get("sum", "loop").meanNs,
      1e8,
      {
        op: "<=",
        value: 1,
      },
    );
    assert.equal(c.met, true);
    const path = await suite.finish(new URL(`file://${dir}/`));
    const report = JSON.parse(await Deno.readTextFile(path));
    assert.equal(report.suite, "smoke");
    assert.equal(report.results.length, 2);
    assert.ok(report.results[0].opsPerSec > 0);
    assert.equal(report.comparisons[0].met, true);
    assert.ok(report.machine.cores >= 1);
    assert.ok(n > 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("percentile picks from sorted samples", () => {
  const xs = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(percentile(xs, 0.5), 51);
  assert.equal(percentile(xs, 0.99), 100);
  assert.ok(Number.isNaN(percentile([], 0.5)));
});

Deno.test("the codec suite runs end to end in quick mode and writes its comparisons", async () => {
  const report = await runQuickSuite("codec.bench.ts", "codec.json");
  assert.equal(report.quick, true);
  const groups = new Set(
    report.results.map((r: { group: string }) => r.group),
  );
  assert.ok(groups.has("Raft heartbeat decode"));
  assert.ok(
    report.comparisons.some((c: { quantity: string }) =>
      c.quantity === "bytes"
    ),
  );
});
