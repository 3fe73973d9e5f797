/**
 * In-process cost of what a building replica does per document, without
 * HTTP, fsync or other processes: the SpamAssassin corpus split into
 * segments of `batch` documents (a 500-line bulk request spread over 3
 * shards is ≈ 170), each analysed, built ({@link buildSegment}) and
 * encoded ({@link encodeSegment}). Prints the median over `rounds` passes
 * of CPU ms per document for analysis alone (name + body), building and
 * encoding, plus the load average. Run with `--cpu-prof` to profile.
 * Process CPU time (getrusage, µs, GC threads included), not elapsed time:
 * on the shared machine elapsed time mostly measures the other processes.
 *
 * Usage: deno run -A benches/search_analyze_profile.ts [rounds=5] [batch=170]
 */
import { Analyzer, buildSegment, encodeSegment } from "@strata/search";
import { cpuUsage } from "node:process";
import { loadDocs } from "./search_service.ts";

const rounds = Number(Deno.args[0] ?? 5);
const batch = Number(Deno.args[1] ?? 170);
const docs = await loadDocs(Infinity);
const batches = [];
for (let i = 0; i < docs.length; i += batch) {
  batches.push(docs.slice(i, i + batch));
}

/** CPU milliseconds this process has used (user + system). */
function cpu(): number {
  const u = cpuUsage();
  return (u.user + u.system) / 1000;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

const analyse: number[] = [];
const build: number[] = [];
const encode: number[] = [];
let sink = 0;
for (let r = 0; r < rounds; r++) {
  // A fresh analyzer per pass, as a freshly started replica has.
  let analyzer = new Analyzer();
  let t0 = cpu();
  for (const d of docs) {
    sink += analyzer.analyze(d.name).terms.length;
    sink += analyzer.analyze(d.body).terms.length;
  }
  analyse.push((cpu() - t0) / docs.length);
  analyzer = new Analyzer();
  const segs = [];
  t0 = cpu();
  for (const b of batches) segs.push(buildSegment(b, analyzer));
  build.push((cpu() - t0) / docs.length);
  t0 = cpu();
  for (const s of segs) sink += encodeSegment(s).length;
  encode.push((cpu() - t0) / docs.length);
}
console.log(
  `${docs.length} docs, segments of ${batch}, median of ${rounds}: ms/doc analyse ${
    median(analyse).toFixed(4)
  }, build (analysis + postings + marks) ${median(build).toFixed(4)}, encode ${
    median(encode).toFixed(4)
  }; load ${(await Deno.readTextFile("/proc/loadavg")).trim()} (${
    sink > 0 ? "ok" : "empty"
  })`,
);
