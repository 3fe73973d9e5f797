/**
 * How long a tablet server may believe its kv session is alive, measured
 * on the monotonic clock: a keep-alive the kv cluster acknowledged, sent at
 * monotonic time `t`, keeps the session alive in kv until at least
 * `t + ttl` (kv sets the deadline when it applies the keep-alive, after
 * `t`). The server serves only until `t + ttl × safety`, so it stops
 * before kv can expire the session and the master hand its tablets to
 * another server — even when the process was paused (SIGSTOP) and never
 * saw a keep-alive fail: the monotonic clock kept running meanwhile.
 */

/** The serving lease of a session. */
export class SessionLease {
  #validUntil = -Infinity;
  #revoked = false;

  /**
   * @param ttlMs the session's TTL;
   * @param safety the fraction of the TTL served after a keep-alive was
   *   sent (default 0.75: leaves a quarter for clock rate differences and
   *   kv's expiry granularity);
   * @param now the monotonic clock (ms).
   */
  constructor(
    readonly ttlMs: number,
    readonly safety = 0.75,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** A keep-alive (or the session's opening) sent at `sentAt` succeeded. */
  renewed(sentAt: number): void {
    if (this.#revoked) return;
    this.#validUntil = Math.max(
      this.#validUntil,
      sentAt + this.ttlMs * this.safety,
    );
  }

  /** The session is gone for good (kv said so, or it was closed). */
  revoke(): void {
    this.#revoked = true;
    this.#validUntil = -Infinity;
  }

  /** Whether the server may serve now. */
  get valid(): boolean {
    return !this.#revoked && this.now() < this.#validUntil;
  }

  /** Milliseconds of serving left (≤ 0: none). */
  get remainingMs(): number {
    return this.#revoked ? 0 : this.#validUntil - this.now();
  }
}
