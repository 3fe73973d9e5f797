/**
 * Test helper: runs one bench script in quick mode (`STRATA_BENCH_QUICK=1`)
 * as its own process, with results written to a temporary directory, and
 * returns the JSON report it wrote. Fails with the script's stderr when it
 * exits non-zero.
 */
import assert from "node:assert/strict";

/**
 * @param script file name beside this module ("codec.bench.ts")
 * @param report the report's file name ("codec.json")
 * @param env extra environment for the run
 */
export async function runQuickSuite(
  script: string,
  report: string,
  env: Record<string, string> = {},
  // deno-lint-ignore no-explicit-any
): Promise<any> {
  const dir = await Deno.makeTempDir();
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL(`./${script}`, import.meta.url).pathname],
      env: {
        ...env,
        STRATA_BENCH_QUICK: "1",
        STRATA_BENCH_RESULTS: dir,
        NO_COLOR: "1",
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    return JSON.parse(await Deno.readTextFile(`${dir}/${report}`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
