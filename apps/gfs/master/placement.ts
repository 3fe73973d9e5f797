/** What placement knows of one chunkserver. */
export interface ServerLoad {
  /** Server id. */
  id: string;
  /** Rack name ("" when racks are not configured). */
  rack: string;
  /** Disk capacity given to chunks, bytes. */
  capacityBytes: number;
  /** Bytes used (reported, plus what the master has placed since). */
  usedBytes: number;
  /** Recent load: requests in flight or per second, any consistent unit. */
  load: number;
  /** Chunks created on it within the recent window. */
  recentCreations: number;
}

/** Placement tunables. */
export interface PlacementOptions {
  /** Bytes the new replica will take (a full chunk by default). */
  chunkBytes: number;
  /**
   * Servers with this many recent creations, and at least twice the mean,
   * are used only if nothing else fits.
   */
  maxRecentCreations: number;
  /** Weight of normalised load against fraction used (0 = ignore load). */
  loadWeight: number;
}

/** Defaults of {@link PlacementOptions} (chunk size must be given). */
export const DEFAULT_PLACEMENT: Omit<PlacementOptions, "chunkBytes"> = {
  maxRecentCreations: 64,
  // Small: load only separates servers whose fractions are within ~1%, so
  // a busy moment never skews where bytes land for good.
  loadWeight: 0.01,
};

/** A server's fraction of capacity used after adding `extra` bytes. */
export function fractionUsed(s: ServerLoad, extra = 0): number {
  return s.capacityBytes <= 0 ? 1 : (s.usedBytes + extra) / s.capacityBytes;
}

/**
 * Chooses up to `count` distinct servers for new replicas of one chunk.
 *
 * - Never two replicas on one server; servers in `exclude` (holders) are
 *   skipped, as are servers without room for the chunk.
 * - Racks: each pick prefers a rack not yet used (including the racks in
 *   `usedRacks`, those of existing replicas); only when every rack is taken
 *   does it reuse one.
 * - Among the allowed, it takes the lowest score: fraction used after the
 *   write plus `loadWeight` × load ÷ the highest load. Fractions, not free
 *   bytes, so disks of different sizes fill evenly, as Colossus does.
 * - Servers with at least `maxRecentCreations` recent creations and twice
 *   the mean are used only when nothing else fits, so a fresh, empty
 *   server is not flooded with all new writes at once.
 *
 * Pure and deterministic (ties break by id).
 * @returns server ids, best first (the first is a good primary).
 */
export function choosePlacement(
  servers: readonly ServerLoad[],
  count: number,
  options: PlacementOptions,
  exclude: ReadonlySet<string> = new Set(),
  usedRacks: ReadonlySet<string> = new Set(),
): string[] {
  const maxLoad = Math.max(1e-9, ...servers.map((s) => s.load));
  const score = (s: ServerLoad) =>
    fractionUsed(s, options.chunkBytes) + options.loadWeight * s.load / maxLoad;
  const candidates = servers
    .filter((s) =>
      !exclude.has(s.id) &&
      s.usedBytes + options.chunkBytes <= s.capacityBytes
    )
    .sort((a, b) => score(a) - score(b) || (a.id < b.id ? -1 : 1));
  // The cap is relative as well as absolute: a server is held back only
  // when it took at least `maxRecentCreations` and twice the mean, so a
  // busy cluster as a whole is never throttled, only a server that gets
  // far more than its share (typically a new, empty one).
  const meanRecent = servers.length === 0
    ? 0
    : servers.reduce((n, s) => n + s.recentCreations, 0) / servers.length;
  const creationCap = Math.max(options.maxRecentCreations, 2 * meanRecent);
  const racks = new Set(usedRacks);
  const picked: string[] = [];
  const taken = new Set<string>();
  while (picked.length < count) {
    const open = candidates.filter((s) => !taken.has(s.id));
    if (open.length === 0) break;
    const fresh = open.filter((s) => s.recentCreations < creationCap);
    const pool = fresh.length > 0 ? fresh : open;
    const newRack = pool.find((s) => s.rack === "" || !racks.has(s.rack));
    const next = newRack ?? pool[0]!;
    picked.push(next.id);
    taken.add(next.id);
    if (next.rack !== "") racks.add(next.rack);
  }
  return picked;
}

/** Write quorum of a replication factor: a majority. */
export function writeQuorum(replication: number): number {
  return Math.floor(replication / 2) + 1;
}
