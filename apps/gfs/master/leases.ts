/** A primary's lease on one chunk. */
export interface Lease {
  /** Chunk handle. */
  handle: number;
  /** Server id of the primary. */
  primary: string;
  /** Chunk version the lease was granted at. */
  version: number;
  /** Expiry, ms since the epoch. */
  expiresAt: number;
}

/**
 * The master's table of chunk leases (soft state, pure: time is passed in).
 * A lease names one primary per chunk; granting a new one goes with a
 * version bump (done by the caller before any client hears of it), so a
 * replica that missed the mutation is recognised as stale.
 */
export class LeaseTable {
  readonly #leases = new Map<number, Lease>();

  /**
   * Creates an empty table.
   * @param durationMs lease length, ms (GFS: 60 s).
   */
  constructor(readonly durationMs = 60_000) {}

  /** The unexpired lease on `handle`, or undefined. */
  get(handle: number, now: number): Lease | undefined {
    const l = this.#leases.get(handle);
    if (l === undefined) return undefined;
    return l.expiresAt > now ? l : undefined;
  }

  /** Records a lease for `primary` at `version` from `now`. */
  grant(handle: number, primary: string, version: number, now: number): Lease {
    const l = { handle, primary, version, expiresAt: now + this.durationMs };
    this.#leases.set(handle, l);
    return l;
  }

  /**
   * Extends the lease of `primary` on `handle` (asked for in a heartbeat).
   * @returns the extended lease, or undefined when it no longer holds one.
   */
  extend(handle: number, primary: string, now: number): Lease | undefined {
    const l = this.get(handle, now);
    if (l === undefined || l.primary !== primary) return undefined;
    l.expiresAt = now + this.durationMs;
    return l;
  }

  /** Drops the lease on a chunk (deleted, or its primary lost it). */
  revoke(handle: number): void {
    this.#leases.delete(handle);
  }

  /** Drops every lease held by a server (it died). @returns the handles. */
  revokeServer(server: string): number[] {
    const out: number[] = [];
    for (const [h, l] of this.#leases) {
      if (l.primary === server) {
        this.#leases.delete(h);
        out.push(h);
      }
    }
    return out;
  }

  /** Forgets leases expired by `now`. */
  prune(now: number): void {
    for (const [h, l] of this.#leases) {
      if (l.expiresAt <= now) this.#leases.delete(h);
    }
  }

  /** Number of leases in the table (expired ones included until pruned). */
  get size(): number {
    return this.#leases.size;
  }
}
