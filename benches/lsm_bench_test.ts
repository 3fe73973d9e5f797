import assert from "node:assert/strict";

Deno.test("the lsm suite runs end to end in quick mode and writes its lines", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const script = new URL("./lsm.bench.ts", import.meta.url).pathname;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", script],
      env: {
        STRATA_BENCH_QUICK: "1",
        STRATA_BENCH_RESULTS: dir,
        NO_COLOR: "1",
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const report = JSON.parse(await Deno.readTextFile(`${dir}/lsm.json`));
    assert.equal(report.quick, true);
    const strata = report.results.filter((r: { name: string }) =>
      r.name === "strata lsm"
    );
    assert.equal(strata.length, 5);
    for (const r of strata) assert.ok(r.opsPerSec > 0, r.group);
    // With RocksDB's db_bench installed, every line has its ratio.
    if (typeof report.metrics.rocksdb !== "string") {
      assert.equal(report.comparisons.length, 5);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
