/** Knobs of a {@link ReplicaSelector}. */
export interface ReplicaSelectorOptions {
  /** Weight of a new latency sample in the moving average (default 0.3). */
  alpha?: number;
  /** How long a failed replica is tried last (ms, default 2000). */
  penaltyMs?: number;
}

interface ReplicaState {
  ewmaMs: number;
  samples: number;
  outstanding: number;
  downUntil: number;
  failures: number;
}

/**
 * Adaptive replica selection, after Elasticsearch's (itself after C3,
 * Suresh et al., NSDI 2015): each replica is ranked by its exponentially
 * weighted response time scaled by its queue, ewma · (1 + outstanding)³,
 * so a slow or busy copy gets less traffic; a replica that just failed is
 * tried last until its penalty expires; replicas never measured rank first
 * so they get sampled. Ties go round-robin. Pure: the caller passes the
 * time and reports outcomes.
 */
export class ReplicaSelector {
  readonly #state: ReplicaState[][];
  readonly #alpha: number;
  readonly #penaltyMs: number;
  #rr = 0;

  /** @param replicas replica count of each shard. */
  constructor(
    replicas: readonly number[],
    options: ReplicaSelectorOptions = {},
  ) {
    this.#state = replicas.map((n) =>
      Array.from(
        { length: n },
        () => ({
          ewmaMs: 0,
          samples: 0,
          outstanding: 0,
          downUntil: 0,
          failures: 0,
        }),
      )
    );
    this.#alpha = options.alpha ?? 0.3;
    this.#penaltyMs = options.penaltyMs ?? 2000;
  }

  /** Replica indices of `shard`, best first, at time `nowMs`. */
  order(shard: number, nowMs: number): number[] {
    const st = this.#state[shard] ?? [];
    const rr = this.#rr++;
    const rank = (r: number) => {
      const s = st[r]!;
      return s.samples === 0 ? 0 : s.ewmaMs * (1 + s.outstanding) ** 3;
    };
    return st.map((_, i) => i).sort((a, b) => {
      const da = st[a]!.downUntil > nowMs ? 1 : 0;
      const db = st[b]!.downUntil > nowMs ? 1 : 0;
      if (da !== db) return da - db;
      const ra = rank(a);
      const rb = rank(b);
      if (ra !== rb) return ra - rb;
      return ((a - rr) % st.length + st.length) % st.length -
        ((b - rr) % st.length + st.length) % st.length;
    });
  }

  /** A request to (shard, replica) starts. */
  started(shard: number, replica: number): void {
    this.#state[shard]![replica]!.outstanding++;
  }

  /** It succeeded after `latencyMs`. */
  succeeded(shard: number, replica: number, latencyMs: number): void {
    const s = this.#state[shard]![replica]!;
    s.outstanding = Math.max(0, s.outstanding - 1);
    s.ewmaMs = s.samples === 0
      ? latencyMs
      : this.#alpha * latencyMs + (1 - this.#alpha) * s.ewmaMs;
    s.samples++;
    s.downUntil = 0;
  }

  /** It failed (error or timeout) at `nowMs`. */
  failed(shard: number, replica: number, nowMs: number): void {
    const s = this.#state[shard]![replica]!;
    s.outstanding = Math.max(0, s.outstanding - 1);
    s.failures++;
    s.downUntil = nowMs + this.#penaltyMs;
  }

  /** Snapshot for /metrics. */
  describe(): Array<
    Array<
      { ewmaMs: number; outstanding: number; failures: number; down: boolean }
    >
  > {
    const now = Date.now();
    return this.#state.map((reps) =>
      reps.map((s) => ({
        ewmaMs: s.ewmaMs,
        outstanding: s.outstanding,
        failures: s.failures,
        down: s.downUntil > now,
      }))
    );
  }
}
