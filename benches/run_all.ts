/**
 * `deno task bench`: runs every suite in benches/ (each `*.bench.ts`, in
 * its own process so one suite's heap and JIT state never colour the
 * next), with progress, then renders the comparison report
 * (benches/report/index.html, as `deno task report` does).
 */
import {
  DEFAULT_REPORT_FILE,
  DEFAULT_RESULTS_DIR,
  writeReport,
} from "./report.ts";

const dir = new URL("./", import.meta.url);
const only = Deno.args;
const suites: string[] = [];
for await (const e of Deno.readDir(dir)) {
  if (e.isFile && e.name.endsWith(".bench.ts")) suites.push(e.name);
}
suites.sort();
const chosen = only.length
  ? suites.filter((s) => only.some((o) => s.startsWith(o)))
  : suites;
const failed: string[] = [];
for (const [i, name] of chosen.entries()) {
  console.log(`\n[${i + 1}/${chosen.length}] ${name}`);
  const started = performance.now();
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(name, dir).pathname],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `[${i + 1}/${chosen.length}] ${name}: ${
      code === 0 ? "done" : `FAILED (exit ${code})`
    } in ${secs} s`,
  );
  if (code !== 0) failed.push(name);
}
console.log(
  `\n${
    chosen.length - failed.length
  } suites done, ${failed.length} failed; results in benches/results/`,
);
const report = await writeReport(DEFAULT_RESULTS_DIR, DEFAULT_REPORT_FILE);
console.log(
  `report: ${report.path} (${report.suites} suites; open it, or the playground's Benchmarks panel)`,
);
if (failed.length) Deno.exit(1);
