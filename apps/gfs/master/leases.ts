/** A primary's lease on one chunk. */
export interface Lease {
  /** Chunk handle. */
  handle: number;
  /** Server id of the primary. */
  primary: string;
  /** Chunk version the lease was granted at. */
  version: number;
  /**
   * Ids of every replica of that version, primary first: the set every
   * mutation under this lease must reach. Fixed at the grant: a member
   * that dies stays in it (mutations then fail until a new lease, with a
   * new version, leaves it out), so none is acknowledged without it.
   */
  replicas: string[];
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
   * Latest expiry ever granted per chunk. Revoking a lease here does not
   * reach its primary, which may go on mutating the chunk until then.
   */
  readonly #heldUntil = new Map<number, number>();
  /** Leases granted by an earlier master may be held until then. */
  #allHeldUntil = 0;

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

  /**
   * Records a lease for `primary` at `version` from `now` over `replicas`
   * (server ids; default: the primary alone).
   */
  grant(
    handle: number,
    primary: string,
    version: number,
    now: number,
    replicas: readonly string[] = [primary],
  ): Lease {
    const l = {
      handle,
      primary,
      version,
      replicas: [primary, ...replicas.filter((r) => r !== primary)],
      expiresAt: now + this.durationMs,
    };
    this.#leases.set(handle, l);
    this.#noteHeld(handle, l.expiresAt);
    return l;
  }

  /**
   * Whether some primary may still hold a lease on `handle` at `now` (and
   * so mutate it), though the table has none: one revoked or dropped here,
   * or granted by an earlier master (see {@link assumeAllHeldUntil}).
   */
  mayBeHeld(handle: number, now: number): boolean {
    return (this.#heldUntil.get(handle) ?? 0) > now || this.#allHeldUntil > now;
  }

  /**
   * Takes every chunk as possibly leased until `until`: a master that
   * starts or takes over does not know the leases its predecessor granted.
   */
  assumeAllHeldUntil(until: number): void {
    this.#allHeldUntil = Math.max(this.#allHeldUntil, until);
  }

  #noteHeld(handle: number, until: number): void {
    this.#heldUntil.set(
      handle,
      Math.max(this.#heldUntil.get(handle) ?? 0, until),
    );
  }

  /**
   * Extends the lease of `primary` on `handle` (asked for in a heartbeat).
   * @returns the extended lease, or undefined when it no longer holds one.
   */
  extend(handle: number, primary: string, now: number): Lease | undefined {
    const l = this.get(handle, now);
    if (l === undefined || l.primary !== primary) return undefined;
    l.expiresAt = now + this.durationMs;
    this.#noteHeld(handle, l.expiresAt);
    return l;
  }

  /**
   * Drops the lease on a chunk (its primary lost it, or a client asks for
   * a new one). Its primary may still hold it until it expires.
   */
  revoke(handle: number): void {
    this.#leases.delete(handle);
  }

  /** Forgets a deleted chunk altogether. */
  forget(handle: number): void {
    this.#leases.delete(handle);
    this.#heldUntil.delete(handle);
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
    for (const [h, until] of this.#heldUntil) {
      if (until <= now) this.#heldUntil.delete(h);
    }
  }

  /** Number of leases in the table (expired ones included until pruned). */
  get size(): number {
    return this.#leases.size;
  }
}
