/**
 * The master's decisions as pure functions: which tablets go to which live
 * server, and which open/close orders bring the servers in line with the
 * assignment. The master runs them on every reconcile pass (level
 * triggered: a lost order is simply planned again on the next pass).
 */
import type { TabletRecord } from "../shared/kv_layout.ts";

/** A tablet moving to a server. */
export interface Reassignment {
  tablet: TabletRecord;
  from: string | null;
  to: string;
}

/**
 * Assigns every tablet whose server is not live to the live server with
 * the fewest tablets (ties: the smallest id). @returns nothing when no
 * server is live.
 */
export function planReassignments(
  tablets: readonly TabletRecord[],
  live: ReadonlySet<string>,
): Reassignment[] {
  if (live.size === 0) return [];
  const load = new Map<string, number>([...live].sort().map((s) => [s, 0]));
  for (const t of tablets) {
    if (t.server !== null && load.has(t.server)) {
      load.set(t.server, load.get(t.server)! + 1);
    }
  }
  const out: Reassignment[] = [];
  for (const t of tablets) {
    if (t.server !== null && live.has(t.server)) continue;
    let best: string | undefined;
    for (const [s, n] of load) {
      if (best === undefined || n < load.get(best)!) best = s;
    }
    load.set(best!, load.get(best!)! + 1);
    out.push({ tablet: { ...t, server: best! }, from: t.server, to: best! });
  }
  return out;
}

/** Orders to one server. */
export interface ServerOrders {
  /** Tablets to open (assigned to it, not open there). */
  open: TabletRecord[];
  /** Tablet ids to close (open there, not assigned to it). */
  close: string[];
}

/**
 * The orders that make `server` serve exactly the tablets assigned to it,
 * given the ids it reports open.
 */
export function planOrders(
  server: string,
  tablets: readonly TabletRecord[],
  reportedOpen: ReadonlySet<string>,
): ServerOrders {
  const mine = tablets.filter((t) => t.server === server);
  const mineIds = new Set(mine.map((t) => t.id));
  return {
    open: mine.filter((t) => !reportedOpen.has(t.id)),
    close: [...reportedOpen].filter((id) => !mineIds.has(id)),
  };
}

/**
 * One move that evens out the load: a tablet from the live server with
 * the most tablets to the one with the fewest, when they differ by more
 * than one (ties: smallest ids). Undefined when balanced. One move per
 * pass keeps the tablets that are briefly unavailable to one at a time.
 */
export function planRebalance(
  tablets: readonly TabletRecord[],
  live: ReadonlySet<string>,
): Reassignment | undefined {
  if (live.size < 2) return undefined;
  const mine = new Map<string, TabletRecord[]>(
    [...live].sort().map((s) => [s, []]),
  );
  for (const t of tablets) {
    if (t.server === null || !mine.has(t.server)) return undefined; // reassign first
    mine.get(t.server)!.push(t);
  }
  let most: string | undefined;
  let least: string | undefined;
  for (const [s, ts] of mine) {
    if (most === undefined || ts.length > mine.get(most)!.length) most = s;
    if (least === undefined || ts.length < mine.get(least)!.length) least = s;
  }
  const from = mine.get(most!)!;
  if (from.length - mine.get(least!)!.length <= 1) return undefined;
  const t = [...from].sort((a, b) => a.id < b.id ? -1 : 1)[0]!;
  return { tablet: { ...t, server: least! }, from: most!, to: least! };
}
