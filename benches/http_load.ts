/**
 * A closed-loop HTTP load generator: `clients` concurrent workers, each
 * sending its next request as soon as the previous one answers, for a
 * fixed time. The same generator drives strata and its peers, so their
 * figures compare.
 */
import { type BenchResult, percentile } from "./harness.ts";

/** What one load run measured. */
export interface LoadResult {
  /** Completed requests per second. */
  opsPerSec: number;
  /** Median latency, ns. */
  p50Ns: number;
  /** 99th percentile latency, ns. */
  p99Ns: number;
  /** Mean latency, ns. */
  meanNs: number;
  /** Requests completed. */
  completed: number;
  /** Requests that failed (non-2xx or network error). */
  errors: number;
  /** Every request sent, warm-up and overrun included (for per-request costs). */
  total: number;
}

/** A load run as the {@link BenchResult} a suite records (samples = completed requests). */
export function loadBenchResult(
  group: string,
  name: string,
  r: LoadResult,
): BenchResult {
  return {
    group,
    name,
    opsPerSec: r.opsPerSec,
    meanNs: r.meanNs,
    p50Ns: r.p50Ns,
    p99Ns: r.p99Ns,
    samples: r.completed,
  };
}

/**
 * Runs `request(worker, seq)` from `clients` workers for `durationMs`
 * (after `warmupMs` not measured). A request resolves true on success.
 */
export async function runLoad(
  clients: number,
  durationMs: number,
  request: (worker: number, seq: number) => Promise<boolean>,
  warmupMs = 300,
): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  let total = 0;
  let measuring = false;
  const start = performance.now();
  const measureFrom = start + warmupMs;
  const end = measureFrom + durationMs;
  await Promise.all(Array.from({ length: clients }, async (_, worker) => {
    let seq = 0;
    while (performance.now() < end) {
      const t0 = performance.now();
      let ok = false;
      try {
        ok = await request(worker, seq++);
      } catch {
        ok = false;
      }
      const t1 = performance.now();
      total++;
      if (!measuring && t0 >= measureFrom) measuring = true;
      if (t0 >= measureFrom && t1 <= end) {
        if (ok) latencies.push((t1 - t0) * 1e6);
        else errors++;
      }
    }
  }));
  latencies.sort((a, b) => a - b);
  const mean = latencies.reduce((s, x) => s + x, 0) /
    Math.max(1, latencies.length);
  return {
    opsPerSec: latencies.length / (durationMs / 1000),
    p50Ns: percentile(latencies, 0.5),
    p99Ns: percentile(latencies, 0.99),
    meanNs: mean,
    completed: latencies.length,
    errors,
    total,
  };
}
