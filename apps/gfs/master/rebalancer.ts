import { fractionUsed, type ServerLoad } from "./placement.ts";

/** Moving one replica: clone to `to`, then delete from `from`. */
export interface MoveTask {
  /** Chunk handle. */
  handle: number;
  /** Over-full server giving the replica up. */
  from: string;
  /** Under-full server receiving it. */
  to: string;
}

/** Tunables of {@link planRebalance}. */
export interface RebalanceOptions {
  /** A server is over-full above mean fraction + this (e.g. 0.05). */
  threshold: number;
  /** Most moves per round: rebalancing is gradual. */
  maxMoves: number;
}

/**
 * Plans a round of rebalancing: replicas move from servers whose fraction
 * used exceeds the mean by more than `threshold` to the emptiest servers
 * that do not hold the chunk and keep the chunk's rack spread (the target
 * is on the source's rack or on a rack no other holder uses). It simulates
 * each move so one round does not overshoot. Pure.
 *
 * @param holdings chunk handle → (holder ids, bytes) for every live chunk.
 */
export function planRebalance(
  servers: readonly ServerLoad[],
  holdings: ReadonlyMap<number, { holders: readonly string[]; bytes: number }>,
  options: RebalanceOptions,
): MoveTask[] {
  if (servers.length < 2) return [];
  const s = new Map(servers.map((x) => [x.id, { ...x }]));
  const mean = () => {
    let used = 0, cap = 0;
    for (const x of s.values()) {
      used += x.usedBytes;
      cap += x.capacityBytes;
    }
    return cap === 0 ? 0 : used / cap;
  };
  const target = mean();
  const byServer = new Map<string, number[]>();
  for (const [h, { holders }] of holdings) {
    for (const id of holders) {
      const l = byServer.get(id) ?? [];
      l.push(h);
      byServer.set(id, l);
    }
  }
  const moves: MoveTask[] = [];
  const moved = new Set<number>();
  while (moves.length < options.maxMoves) {
    const fullest = [...s.values()].sort((a, b) =>
      fractionUsed(b) - fractionUsed(a) || (a.id < b.id ? -1 : 1)
    )[0]!;
    if (fractionUsed(fullest) <= target + options.threshold) break;
    let done = false;
    for (const h of (byServer.get(fullest.id) ?? []).sort((a, b) => a - b)) {
      if (moved.has(h)) continue;
      const { holders, bytes } = holdings.get(h)!;
      const otherRacks = new Set(
        holders.filter((x) => x !== fullest.id).map((x) => s.get(x)?.rack),
      );
      const dest = [...s.values()]
        .filter((x) =>
          !holders.includes(x.id) &&
          x.usedBytes + bytes <= x.capacityBytes &&
          fractionUsed(x, bytes) < fractionUsed(fullest) - bytes /
                Math.max(1, fullest.capacityBytes) &&
          (x.rack === "" || x.rack === fullest.rack || !otherRacks.has(x.rack))
        )
        .sort((a, b) =>
          fractionUsed(a) - fractionUsed(b) || (a.id < b.id ? -1 : 1)
        )[0];
      if (dest === undefined) continue;
      moves.push({ handle: h, from: fullest.id, to: dest.id });
      moved.add(h);
      fullest.usedBytes -= bytes;
      dest.usedBytes += bytes;
      done = true;
      break;
    }
    if (!done) break;
  }
  return moves;
}
