import {
  choosePlacement,
  fractionUsed,
  type PlacementOptions,
  type ServerLoad,
} from "./placement.ts";

/** What the planner knows of one chunk. */
export interface ChunkReplicas {
  /** Chunk handle. */
  handle: number;
  /** Replication goal. */
  goal: number;
  /** Live servers holding the current version. */
  holders: readonly string[];
  /** Bytes of the chunk (for placement), default a full chunk. */
  bytes?: number;
}

/** A clone in progress or planned: copy `handle` from `source` to `target`. */
export interface CloneTask {
  /** Chunk handle. */
  handle: number;
  /** Server id that has a good replica. */
  source: string;
  /** Server id that will receive it. */
  target: string;
}

/** What {@link planReplication} decided. */
export interface ReplicationPlan {
  /** New clones to start, most urgent first. */
  clones: CloneTask[];
  /** Surplus replicas to delete (over-replicated chunks). */
  deletions: { handle: number; server: string }[];
  /** Chunks with no live replica left. */
  lost: number[];
  /** Chunks below goal (lost ones excluded). */
  underReplicated: number;
}

/** Tunables of {@link planReplication}. */
export interface ReplicationOptions extends PlacementOptions {
  /** Concurrent clones one server may take part in (source or target). */
  maxClonesPerServer: number;
  /** Most new clones per planning round. */
  maxNewClones: number;
}

/**
 * Plans re-replication. Chunks furthest from their goal go first (fewest
 * holders relative to the goal: a chunk with one of three replicas before
 * one with two), and every server takes part in at most
 * `maxClonesPerServer` clones at once, counting those already in flight,
 * so re-replication never swamps client traffic. Targets come from
 * {@link choosePlacement} (rack spread, fraction used). Over-replicated
 * chunks lose their replica on the fullest server. Pure.
 */
export function planReplication(
  chunks: readonly ChunkReplicas[],
  servers: readonly ServerLoad[],
  inflight: readonly CloneTask[],
  options: ReplicationOptions,
): ReplicationPlan {
  const busy = new Map<string, number>();
  const bump = (s: string) => busy.set(s, (busy.get(s) ?? 0) + 1);
  const inflightByHandle = new Map<number, string[]>();
  for (const t of inflight) {
    bump(t.source);
    bump(t.target);
    const l = inflightByHandle.get(t.handle) ?? [];
    l.push(t.target);
    inflightByHandle.set(t.handle, l);
  }
  const byId = new Map(servers.map((s) => [s.id, { ...s }]));
  const lost: number[] = [];
  const deletions: { handle: number; server: string }[] = [];
  const needy: { c: ChunkReplicas; missing: number; coming: string[] }[] = [];
  for (const c of chunks) {
    const coming = inflightByHandle.get(c.handle) ?? [];
    const have = c.holders.length;
    if (have === 0) {
      lost.push(c.handle);
      continue;
    }
    if (have > c.goal && coming.length === 0) {
      const surplus = [...c.holders].sort((a, b) => {
        const sa = byId.get(a), sb = byId.get(b);
        const fa = sa ? fractionUsed(sa) : 2, fb = sb ? fractionUsed(sb) : 2;
        return fb - fa || (a < b ? -1 : 1);
      }).slice(0, have - c.goal);
      for (const s of surplus) deletions.push({ handle: c.handle, server: s });
    }
    const missing = c.goal - have - coming.length;
    if (missing > 0) needy.push({ c, missing, coming });
  }
  needy.sort((a, b) =>
    a.c.holders.length / a.c.goal - b.c.holders.length / b.c.goal ||
    b.missing - a.missing || a.c.handle - b.c.handle
  );
  const underReplicated = needy.length +
    chunks.filter((c) =>
      c.holders.length > 0 && c.holders.length < c.goal &&
      !needy.some((n) => n.c.handle === c.handle)
    ).length;
  const clones: CloneTask[] = [];
  for (const { c, missing, coming } of needy) {
    if (clones.length >= options.maxNewClones) break;
    const free = (s: string) => (busy.get(s) ?? 0) < options.maxClonesPerServer;
    const sources = c.holders.filter(free).sort((a, b) =>
      (busy.get(a) ?? 0) - (busy.get(b) ?? 0) || (a < b ? -1 : 1)
    );
    if (sources.length === 0) continue;
    const exclude = new Set([...c.holders, ...coming]);
    const racks = new Set(
      [...c.holders, ...coming].map((s) => byId.get(s)?.rack ?? "").filter((
        r,
      ) => r !== ""),
    );
    const eligible = [...byId.values()].filter((s) => free(s.id));
    const bytes = c.bytes ?? options.chunkBytes;
    const targets = choosePlacement(
      eligible,
      Math.min(missing, sources.length),
      { ...options, chunkBytes: bytes },
      exclude,
      racks,
    );
    targets.forEach((target, i) => {
      const source = sources[i % sources.length]!;
      clones.push({ handle: c.handle, source, target });
      bump(source);
      bump(target);
      const t = byId.get(target)!;
      t.usedBytes += bytes;
    });
  }
  return { clones, deletions, lost, underReplicated };
}
