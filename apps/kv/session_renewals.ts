/**
 * Keep-alives a leader acknowledges without a log entry, as etcd's lessor
 * renews leases and Chubby's master extends sessions: in memory, on a
 * leader that has just confirmed its leadership (lease or ReadIndex). A
 * keep-alive through the log cost every node an fsync and the cluster
 * ~4–6 ms of CPU; an idle tables cell sent five a second.
 *
 * The promise is unchanged: a session acknowledged alive by a keep-alive
 * that arrived at wall time `t` is not expired before `t + ttl`.
 * - This leader: a session's deadline is the latest of its deadline in the
 *   replicated state (open, or a keep-alive through the log) and
 *   `renewal + ttl`, where `renewal` is the newest keep-alive this leader
 *   acknowledged in memory, and at least the time it took over.
 * - A later leader: the keep-alive was acknowledged only after this
 *   leader confirmed its leadership after `t`, so any later leader took
 *   over after `t`, and it counts every session as renewed at its own
 *   takeover. (Wall clocks are compared as kv already does: a session's
 *   deadline in the log is the proposer's clock.)
 * - The log: the replicated `expire` ends every session whose deadline
 *   in the state is past its `now`. So before proposing one, the leader
 *   writes the renewals of the sessions the state thinks are due but that
 *   are alive here as `session_keepalive` entries ({@link planExpiry}):
 *   only a cell where some session really expires writes them.
 *
 * Pure: no clock, no I/O; `KvNode` drives it.
 */

/** A session as the replicated state holds it. */
export interface SessionDeadline {
  id: number;
  ttlMs: number;
  /** Deadline in the replicated state (proposer's wall clock, ms). */
  expiresAt: number;
}

/** What the leader proposes to expire the sessions that are due. */
export interface ExpiryPlan {
  /** Keep-alives to write first: each session's newest renewal here. */
  flush: Array<{ id: number; now: number }>;
  /** Sessions that are due by the state and by this leader. */
  due: number[];
}

/** The in-memory renewals of one leadership term. */
export class SessionRenewals {
  #renewed = new Map<number, number>();
  #takeover = -Infinity;
  #leading = false;

  /**
   * This node became leader (`leading`, at wall time `now`) or stopped
   * being one: renewals of an earlier term are dropped (a leader that
   * comes back counts every session renewed at its new takeover).
   */
  leaderChanged(leading: boolean, now: number): void {
    this.#renewed.clear();
    this.#leading = leading;
    this.#takeover = leading ? now : -Infinity;
  }

  /** True while this node leads (renewals may be taken in memory). */
  get leading(): boolean {
    return this.#leading;
  }

  /** The session's deadline on this leader (wall ms). */
  deadline(s: SessionDeadline): number {
    if (!this.#leading) return s.expiresAt;
    const renewed = Math.max(
      this.#renewed.get(s.id) ?? -Infinity,
      this.#takeover,
    );
    return Math.max(s.expiresAt, renewed + s.ttlMs);
  }

  /**
   * Takes a keep-alive that arrived at `arrivedAt` in memory, if the
   * session is not already due at `now` (a due session may be in an
   * expiry on its way through the log: its keep-alive must go through the
   * log too, after it). Call only after confirming leadership.
   * @returns the new deadline, or undefined when it must go through the log.
   */
  renew(
    s: SessionDeadline,
    arrivedAt: number,
    now: number,
  ): number | undefined {
    if (!this.#leading || this.deadline(s) <= now) return undefined;
    this.#renewed.set(
      s.id,
      Math.max(this.#renewed.get(s.id) ?? -Infinity, arrivedAt),
    );
    return this.deadline(s);
  }

  /** Forgets an ended session. */
  forget(id: number): void {
    this.#renewed.delete(id);
  }

  /**
   * What to propose at wall time `now` for the sessions the state thinks
   * are due (`expiresAt <= now`): keep-alives for those alive here, then
   * (if any is due here too) `expire {now}`.
   */
  planExpiry(dueByState: readonly SessionDeadline[], now: number): ExpiryPlan {
    const plan: ExpiryPlan = { flush: [], due: [] };
    for (const s of dueByState) {
      if (s.expiresAt > now) continue;
      if (this.deadline(s) > now) {
        const renewed = Math.max(
          this.#renewed.get(s.id) ?? -Infinity,
          this.#takeover,
        );
        plan.flush.push({ id: s.id, now: renewed });
      } else plan.due.push(s.id);
    }
    return plan;
  }
}
