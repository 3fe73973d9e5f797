/**
 * @module
 * The benchmark harness every suite in `benches/` uses: mitata measures,
 * this records. Each suite compares strata with the peers a user would pick
 * instead, in the same run, and writes `benches/results/<suite>.json` so the
 * report and READMEs quote measured figures, never typed ones.
 */
import { measure } from "mitata";
import * as os from "node:os";

/** One measured (or externally timed) case. */
export interface BenchResult {
  /** What is compared within the suite: "heartbeat decode". */
  group: string;
  /** Who does it: "strata codec", "cbor-x", "JSON". */
  name: string;
  /** Operations per second (1e9 / mean ns, times opsPerCall). */
  opsPerSec: number;
  /** Mean time of one call, ns. */
  meanNs: number;
  /** Median time of one call, ns. */
  p50Ns: number;
  /** 99th percentile time of one call, ns. */
  p99Ns: number;
  /** Samples behind the figures. */
  samples: number;
  /** Bytes per operation, where size is what is compared. */
  bytes?: number;
  /** Payload MB/s (bytes × ops/s), when bytes moved per call is known. */
  mbPerSec?: number;
}

/** A ratio between two results of the same run, with an optional goal. */
export interface Comparison {
  /** Sentence-like label: "decode+validate vs raw cbor-x (time)". */
  label: string;
  /** The ratio (strata ÷ peer) of the compared quantity. */
  ratio: number;
  /** What the ratio compares: "time", "bytes", "throughput". */
  quantity: string;
  /** The goal, e.g. { op: "<=", value: 2 }. */
  goal?: { op: "<=" | ">="; value: number };
  /** Whether the goal was met in this run. */
  met?: boolean;
}

/** The file written to `benches/results/<suite>.json`. */
export interface SuiteReport {
  suite: string;
  description: string;
  date: string;
  machine: {
    runtime: string;
    v8: string;
    os: string;
    cpu: string;
    cores: number;
    memoryGiB: number;
  };
  quick: boolean;
  results: BenchResult[];
  comparisons: Comparison[];
  metrics: Record<string, number | string>;
}

/** Options of a timed case. */
export interface BenchOptions {
  /** Bytes per call (encoded size, or payload moved) to report. */
  bytes?: number;
  /** Operations done by one call (a batch of 64 counts 64). */
  opsPerCall?: number;
  /** Payload bytes moved by one call, for MB/s. */
  payloadBytes?: number;
}

/** True when suites should run briefly (`STRATA_BENCH_QUICK=1`, used by smoke tests). */
export const QUICK = Deno.env.get("STRATA_BENCH_QUICK") === "1";

/** Collects the results of one suite and writes its JSON report. */
export class Suite {
  readonly results: BenchResult[] = [];
  readonly comparisons: Comparison[] = [];
  readonly metrics: Record<string, number | string> = {};

  /** @param name file name of the results (`codec` → results/codec.json). */
  constructor(readonly name: string, readonly description: string) {}

  /** Times `fn` with mitata and records it under `group`/`name`. */
  async bench(
    group: string,
    name: string,
    fn: () => unknown,
    options: BenchOptions = {},
  ): Promise<BenchResult> {
    const stats = await measure(
      fn,
      QUICK
        ? {
          min_cpu_time: 1e6,
          min_samples: 2,
          max_samples: 20,
          warmup_samples: 2,
        }
        : { min_cpu_time: 300e6 },
    );
    const opsPerCall = options.opsPerCall ?? 1;
    return this.record({
      group,
      name,
      opsPerSec: (1e9 / stats.avg) * opsPerCall,
      meanNs: stats.avg,
      p50Ns: stats.p50,
      p99Ns: stats.p99,
      samples: stats.samples.length,
      bytes: options.bytes,
      mbPerSec: options.payloadBytes === undefined
        ? undefined
        : (options.payloadBytes * 1e9 / stats.avg) / 1e6,
    });
  }

  /** Records a result measured by the suite itself (load generators). */
  record(result: BenchResult): BenchResult {
    this.results.push(result);
    const bytes = result.bytes === undefined ? "" : `  ${result.bytes} B`;
    const mb = result.mbPerSec === undefined
      ? ""
      : `  ${result.mbPerSec.toFixed(1)} MB/s`;
    console.log(
      `  ${result.group} · ${result.name}: ${fmtOps(result.opsPerSec)} ops/s` +
        `  p50 ${fmtNs(result.p50Ns)}  p99 ${fmtNs(result.p99Ns)}${bytes}${mb}`,
    );
    return result;
  }

  /** Finds a recorded result. @throws Error when it is missing. */
  get(group: string, name: string): BenchResult {
    const r = this.results.find((x) => x.group === group && x.name === name);
    if (!r) throw new Error(`no result ${group} · ${name}`);
    return r;
  }

  /** Records a ratio (strata ÷ peer) and whether it meets its goal. */
  compare(
    label: string,
    quantity: string,
    strata: number,
    peer: number,
    goal?: { op: "<=" | ">="; value: number },
  ): Comparison {
    const ratio = strata / peer;
    const met = goal === undefined
      ? undefined
      : goal.op === "<="
      ? ratio <= goal.value
      : ratio >= goal.value;
    const c: Comparison = { label, quantity, ratio, goal, met };
    this.comparisons.push(c);
    return c;
  }

  /** Records a figure that is not a timing (sizes, counts, balance). */
  metric(name: string, value: number | string): void {
    this.metrics[name] = value;
  }

  /**
   * Prints the comparisons and writes the JSON report (to `dir`, else the
   * folder in `STRATA_BENCH_RESULTS`, else benches/results/).
   * @returns its path.
   */
  async finish(dir: URL = resultsDir()): Promise<string> {
    console.log(`\n${this.name}: comparisons (strata ÷ peer)`);
    for (const c of this.comparisons) {
      const goal = c.goal
        ? `  goal ${c.goal.op} ${c.goal.value}: ${c.met ? "met" : "NOT met"}`
        : "";
      console.log(`  ${c.label} [${c.quantity}]: ${c.ratio.toFixed(3)}${goal}`);
    }
    const report: SuiteReport = {
      suite: this.name,
      description: this.description,
      date: new Date().toISOString(),
      machine: machine(),
      quick: QUICK,
      results: this.results,
      comparisons: this.comparisons,
      metrics: this.metrics,
    };
    await Deno.mkdir(dir, { recursive: true });
    const path = new URL(`${this.name}.json`, dir);
    await Deno.writeTextFile(path, JSON.stringify(report, null, 2) + "\n");
    console.log(`\nwrote ${path.pathname}`);
    return path.pathname;
  }
}

function resultsDir(): URL {
  const env = Deno.env.get("STRATA_BENCH_RESULTS");
  if (env) return new URL(`file://${env.endsWith("/") ? env : env + "/"}`);
  return new URL("./results/", import.meta.url);
}

/** What the figures were measured on. */
export function machine(): SuiteReport["machine"] {
  return {
    runtime: `deno ${Deno.version.deno}`,
    v8: Deno.version.v8,
    os: `${Deno.build.os} ${os.release()} ${Deno.build.arch}`,
    cpu: os.cpus()[0]?.model ?? "unknown",
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  };
}

function fmtOps(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return n.toFixed(1);
}

function fmtNs(ns: number): string {
  if (ns >= 1e9) return `${(ns / 1e9).toFixed(2)} s`;
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(2)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(2)} µs`;
  return `${ns.toFixed(0)} ns`;
}

/** Percentile (0..1) of an ascending-sorted array of numbers. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.floor(p * sorted.length));
  return sorted[i]!;
}
