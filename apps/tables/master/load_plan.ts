/**
 * The master's load decisions as pure functions of what the tablet
 * servers report (per-tablet rates and sizes) and of the times, on the
 * master's monotonic clock, since when each tablet has been hot or cold:
 * split a tablet that stayed hot, merge two adjacent tablets that stayed
 * small and cold, move a tablet to even out the servers' load.
 */
import { Buffer } from "node:buffer";
import type { TabletRecord } from "../shared/kv_layout.ts";
import type { Reassignment } from "./assignment_plan.ts";

/** One tablet's load as its server last reported it. */
export interface TabletLoad {
  bytes: number;
  writesPerSec: number;
  readsPerSec: number;
  /** The server's load-based split key (base64), when it has one. */
  splitKey?: string;
}

/** The thresholds of the load decisions (0 turns a decision off). */
export interface LoadPolicy {
  /** A tablet is hot at this many writes + reads per second or more. */
  splitOps: number;
  /** ... and is split once it has been hot this long, ms. */
  splitAfterMs: number;
  /** Adjacent tablets merge when their bytes add up to at most this. */
  mergeBytes: number;
  /** A tablet is cold below this many writes + reads per second. */
  mergeOps: number;
  /** ... and may merge once it has been cold this long, ms. */
  mergeAfterMs: number;
  /**
   * A tablet moves off a server whose load exceeds the mean server load
   * by this factor (and `splitOps / 4`, so idle cells do not shuffle).
   */
  balanceFactor: number;
}

/** Defaults: split at 2,000 ops/s held 30 s; merges off; balance past 1.5x the mean. */
export const DEFAULT_LOAD_POLICY: LoadPolicy = {
  splitOps: 2000,
  splitAfterMs: 30_000,
  mergeBytes: 0,
  mergeOps: 1,
  mergeAfterMs: 60_000,
  balanceFactor: 1.5,
};

/** Writes plus reads per second. */
export const opsOf = (l: TabletLoad): number => l.writesPerSec + l.readsPerSec;

/**
 * Since when each reported tablet has met `test`: kept from `since` while
 * it still does, `now` when it starts to, dropped when it stops (or is no
 * longer reported).
 */
export function sustained(
  since: ReadonlyMap<string, number>,
  loads: ReadonlyMap<string, TabletLoad>,
  test: (l: TabletLoad) => boolean,
  now: number,
): Map<string, number> {
  const out = new Map<string, number>();
  for (const [id, l] of loads) {
    if (test(l)) out.set(id, since.get(id) ?? now);
  }
  return out;
}

/** A tablet to split, and where. */
export interface LoadSplit {
  tablet: TabletRecord;
  /** Base64 split key from the server's sample of recent keys. */
  key: string;
  opsPerSec: number;
}

/**
 * Tablets hot for at least `splitAfterMs` that have a split key, hottest
 * first. A hot tablet without a key (its load is on one row) is left.
 */
export function planLoadSplits(
  tablets: readonly TabletRecord[],
  loads: ReadonlyMap<string, TabletLoad>,
  hotSince: ReadonlyMap<string, number>,
  now: number,
  policy: LoadPolicy,
): LoadSplit[] {
  if (policy.splitOps <= 0) return [];
  const out: LoadSplit[] = [];
  for (const t of tablets) {
    const l = loads.get(t.id);
    const since = hotSince.get(t.id);
    if (!l || since === undefined || l.splitKey === undefined) continue;
    if (now - since < policy.splitAfterMs || opsOf(l) < policy.splitOps) {
      continue;
    }
    out.push({ tablet: t, key: l.splitKey, opsPerSec: opsOf(l) });
  }
  return out.sort((a, b) => b.opsPerSec - a.opsPerSec);
}

/** Two adjacent tablets to merge. */
export interface MergePlan {
  left: TabletRecord;
  right: TabletRecord;
  bytes: number;
}

const startBytes = (t: TabletRecord) => Buffer.from(t.start, "base64");

/**
 * The smallest pair of adjacent tablets of one table, both assigned to a
 * live server and reported, that have both been cold for `mergeAfterMs`
 * and hold at most `mergeBytes` together. Undefined when merges are off
 * or no pair qualifies.
 */
export function planMerge(
  tablets: readonly TabletRecord[],
  loads: ReadonlyMap<string, TabletLoad>,
  coldSince: ReadonlyMap<string, number>,
  live: ReadonlySet<string>,
  now: number,
  policy: LoadPolicy,
): MergePlan | undefined {
  if (policy.mergeBytes <= 0) return undefined;
  const ready = (t: TabletRecord) => {
    const since = coldSince.get(t.id);
    return t.server !== null && live.has(t.server) && loads.has(t.id) &&
      since !== undefined && now - since >= policy.mergeAfterMs;
  };
  const byTable = new Map<string, TabletRecord[]>();
  for (const t of tablets) {
    byTable.set(t.table, [...byTable.get(t.table) ?? [], t]);
  }
  let best: MergePlan | undefined;
  for (const ts of byTable.values()) {
    ts.sort((a, b) => Buffer.compare(startBytes(a), startBytes(b)));
    for (let i = 0; i + 1 < ts.length; i++) {
      const [left, right] = [ts[i]!, ts[i + 1]!];
      if (left.end !== right.start || !ready(left) || !ready(right)) continue;
      const bytes = loads.get(left.id)!.bytes + loads.get(right.id)!.bytes;
      if (bytes > policy.mergeBytes) continue;
      if (!best || bytes < best.bytes) best = { left, right, bytes };
    }
  }
  return best;
}

/**
 * One move that evens out the servers' load (writes + reads per second):
 * from the busiest live server, when it carries more than `balanceFactor`
 * times the mean (and at least `splitOps / 4`), to the least busy one,
 * the tablet that brings the two closest together — only when the
 * busiest server also holds more tablets than the other, so that the
 * count-based balancing does not move it back.
 */
export function planLoadMove(
  tablets: readonly TabletRecord[],
  loads: ReadonlyMap<string, TabletLoad>,
  live: ReadonlySet<string>,
  policy: LoadPolicy,
): Reassignment | undefined {
  if (live.size < 2 || policy.balanceFactor <= 0) return undefined;
  const per = new Map<string, { ops: number; tablets: TabletRecord[] }>(
    [...live].sort().map((s) => [s, { ops: 0, tablets: [] }]),
  );
  for (const t of tablets) {
    if (t.server === null || !per.has(t.server)) return undefined; // reassign first
    const p = per.get(t.server)!;
    p.tablets.push(t);
    p.ops += loads.has(t.id) ? opsOf(loads.get(t.id)!) : 0;
  }
  const servers = [...per.entries()];
  const mean = servers.reduce((a, [, p]) => a + p.ops, 0) / servers.length;
  const [hot, hp] = servers.reduce((a, b) => b[1].ops > a[1].ops ? b : a);
  const [cold, cp] = servers.reduce((a, b) => b[1].ops < a[1].ops ? b : a);
  if (hp.ops <= mean * policy.balanceFactor || hp.ops < policy.splitOps / 4) {
    return undefined;
  }
  if (hp.tablets.length <= cp.tablets.length) return undefined;
  let best: { t: TabletRecord; gap: number } | undefined;
  for (const t of hp.tablets) {
    const ops = loads.has(t.id) ? opsOf(loads.get(t.id)!) : 0;
    const gap = Math.abs((hp.ops - ops) - (cp.ops + ops));
    if (gap < hp.ops - cp.ops && (!best || gap < best.gap)) best = { t, gap };
  }
  if (!best) return undefined;
  return { tablet: { ...best.t, server: cold }, from: hot, to: cold };
}
