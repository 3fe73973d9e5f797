/**
 * `crdt_placement.ts` (pure): which servers hold a new CRDT range's
 * replicas: the live servers holding the fewest replicas so far (ties by
 * id), so ranges spread evenly. The first is the range's home.
 */
import type { CrdtRangeRecord } from "./crdt_wire.ts";

/**
 * `n` live servers for a new range.
 * @returns undefined when fewer than `n` servers are live.
 */
export function placeReplicas(
  live: string[],
  ranges: CrdtRangeRecord[],
  n: number,
): string[] | undefined {
  if (live.length < n) return undefined;
  const held = new Map(live.map((id) => [id, 0]));
  for (const r of ranges) {
    for (const id of r.replicas) {
      if (held.has(id)) held.set(id, held.get(id)! + 1);
    }
  }
  return [...live].sort((a, b) =>
    held.get(a)! - held.get(b)! || (a < b ? -1 : a > b ? 1 : 0)
  ).slice(0, n);
}
