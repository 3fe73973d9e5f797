import type { LogEntry } from "./log_format.ts";

/** What a replay of a tablet's commit log files yields. */
export interface ResolvedLog {
  /** Records after the covered index, consecutive, in index order. */
  records: { index: number; payload: Uint8Array }[];
  /** Index of the last record (the covered index when none is newer). */
  last: number;
  /** Valid records found beyond a gap (never acknowledged; not replayed). */
  beyondGap: number;
}

/**
 * Decides which log entries are the store's history (pure; the order of
 * `entries` does not matter):
 * - a record of epoch `e` is void when an owner of a higher epoch started
 *   at or below its index (a `start` entry): it was appended by a fenced
 *   predecessor after the new owner had replayed the log, never
 *   acknowledged;
 * - copies of one index (GFS record append is at least once) count once;
 * - records up to `covered` are in the tables and skipped;
 * - the history is the consecutive run from `covered + 1`; records after
 *   a gap were never acknowledged (appends are acknowledged in order).
 */
export function resolveLog(
  entries: Iterable<LogEntry>,
  covered: number,
): ResolvedLog {
  const startsByEpoch = new Map<number, number>();
  const all: LogEntry[] = [];
  for (const e of entries) {
    if (e.kind === "start") {
      const s = startsByEpoch.get(e.epoch);
      if (s === undefined || e.index < s) startsByEpoch.set(e.epoch, e.index);
    } else if (e.index > covered) all.push(e);
  }
  // voidFrom(e) = the lowest start of any higher epoch (few epochs: a scan).
  const voidCache = new Map<number, number>();
  const voidFrom = (epoch: number): number => {
    let m = voidCache.get(epoch);
    if (m === undefined) {
      m = Infinity;
      for (const [ep, s] of startsByEpoch) if (ep > epoch) m = Math.min(m, s);
      voidCache.set(epoch, m);
    }
    return m;
  };
  const byIndex = new Map<number, Uint8Array>();
  for (const e of all) {
    if (e.kind !== "record" || e.index >= voidFrom(e.epoch)) continue;
    if (!byIndex.has(e.index)) byIndex.set(e.index, e.payload);
  }
  const records: { index: number; payload: Uint8Array }[] = [];
  let i = covered + 1;
  for (; byIndex.has(i); i++) {
    records.push({ index: i, payload: byIndex.get(i)! });
  }
  return { records, last: i - 1, beyondGap: byIndex.size - records.length };
}
