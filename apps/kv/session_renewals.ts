/**
 * Session expiry on the leader, on its monotonic clock, as etcd's lessor
 * and Chubby's master keep them: the leader alone decides that a session
 * is over, from time it measured itself, and writes the decision into the
 * log (`session_expire`: ids, not a time). No wall clock takes part, so a
 * step of a wall clock (NTP, a VM resume) neither ends live sessions early
 * (a forward step) nor keeps dead ones alive (a backward one).
 *
 * The promise: a session whose keep-alive arrived at time `t` (or that was
 * opened at `t`) is not expired before `t + ttl`, elapsed time measured on
 * the leader's monotonic clock.
 * - This leader counts a session renewed at the latest of: its takeover, a
 *   keep-alive it acknowledged in memory (when it arrived; taken only
 *   after confirming leadership, so no log entry and no fsync), and the
 *   moment it applied an entry that opened or renewed the session (a
 *   keep-alive sent to a follower goes through the log; the leader applies
 *   it after it arrived there). A session is due when `ttl` has passed
 *   since on the monotonic clock.
 * - A later leader: an acknowledgement happened after its leader confirmed
 *   its leadership, so any later leader took over after it, and counts
 *   every session renewed at its own takeover. The deadlines in the log
 *   (`expiresAt`, the proposers' wall clocks) play no part: a deadline
 *   written by a leader with a fast clock cannot end a session early.
 * - The log: the leader decides at its applied index `asOf` and proposes
 *   `session_expire {ids, asOf}`; a session that an entry after `asOf`
 *   renewed (a keep-alive through the log, acknowledged before the expiry
 *   applied) is left alone by every replica. A due session's keep-alive is
 *   not taken in memory (an expiry naming it may be on its way): it goes
 *   through the log, which orders it with that expiry.
 *
 * Times here are monotonic milliseconds (any origin; only differences
 * count). Pure: no clock, no I/O; `KvNode` drives it.
 */

/** What the leader needs of a session. */
export interface SessionTtl {
  id: number;
  ttlMs: number;
}

/** The renewals of one leadership term, in monotonic milliseconds. */
export class SessionRenewals {
  #renewed = new Map<number, number>();
  #takeover = -Infinity;
  #leading = false;

  /**
   * This node became leader (`leading`, at monotonic time `now`) or
   * stopped being one: renewals of an earlier term are dropped (a leader
   * that comes back counts every session renewed at its new takeover).
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

  /**
   * The session's deadline on this leader (monotonic ms): its last
   * renewal here (at least the takeover) plus its TTL; -Infinity when not
   * leading.
   */
  deadline(s: SessionTtl): number {
    if (!this.#leading) return -Infinity;
    const renewed = this.#renewed.get(s.id);
    return (renewed === undefined || renewed < this.#takeover
      ? this.#takeover
      : renewed) + s.ttlMs;
  }

  /**
   * An entry that opened or renewed session `id` was applied here at
   * monotonic time `now` (only counts while leading).
   */
  renewedByLog(id: number, now: number): void {
    if (this.#leading) this.#note(id, now);
  }

  /**
   * Takes a keep-alive that arrived at monotonic `arrivedAt` in memory,
   * unless the session is already due at `now` (an expiry naming it may be
   * on its way through the log: its keep-alive must go through the log
   * too, after it). Call only after confirming leadership.
   * @returns the new deadline (monotonic ms), or undefined when the
   *   keep-alive must go through the log.
   */
  renew(
    s: SessionTtl,
    arrivedAt: number,
    now: number,
  ): number | undefined {
    if (!this.#leading || this.deadline(s) <= now) return undefined;
    this.#note(s.id, arrivedAt);
    return this.deadline(s);
  }

  /** Forgets an ended session. */
  forget(id: number): void {
    this.#renewed.delete(id);
  }

  /**
   * The sessions due at monotonic `now` (none when not leading), at most
   * `max` of them.
   */
  due(sessions: Iterable<SessionTtl>, now: number, max = Infinity): number[] {
    const out: number[] = [];
    if (!this.#leading) return out;
    for (const s of sessions) {
      if (out.length >= max) break;
      if (this.deadline(s) <= now) out.push(s.id);
    }
    return out;
  }

  #note(id: number, at: number): void {
    const cur = this.#renewed.get(id);
    if (cur === undefined || at > cur) this.#renewed.set(id, at);
  }
}
