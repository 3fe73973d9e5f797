/**
 * `room_order.ts`: the receiving side's ordering of one room's messages.
 * The room's home numbers each message (`epoch`, `seq`); a server learns
 * where its subscription starts from the home's answer to its join, then
 * releases messages in `seq` order: it holds a message that arrives ahead
 * of a missing one, drops one at or before the start (published before it
 * joined) or of an unknown epoch; a late message of the epoch before a
 * re-join (the previous home's) is released as it comes; and it skips a
 * gap that stays open past a timeout. Pure: the caller passes the clock.
 */

/** A numbered message. */
export interface Numbered<T> {
  epoch: number;
  seq: number;
  value: T;
}

/** Counters of what {@link RoomOrder} dropped or skipped. */
export interface OrderStats {
  /** Messages of another epoch, or numbered at/before the join. */
  stale: number;
  /** Messages given up on (a gap that stayed open). */
  skipped: number;
}

/** One room's order on one server. */
export class RoomOrder<T> {
  #epoch: number | undefined;
  #next = 0;
  // Both made only when needed: a server keeps one of these per room.
  /** Arrived before the join's answer: numbers unknown yet. */
  #early: Numbered<T>[] | undefined;
  #held: Map<number, T> | undefined;
  #blockedSince: number | undefined;
  /**
   * The epoch before a restart: its late messages (numbered by the old
   * home before it closed, still on their way) are released, not dropped.
   */
  #old: { epoch: number; next: number } | undefined;

  /** @param stats shared counters. */
  constructor(private readonly stats: OrderStats) {}

  /** Messages held behind a gap. */
  get held(): number {
    return this.#held?.size ?? 0;
  }

  /** Forgets the start (a new join is on its way); holds what arrives. */
  restart(): void {
    if (this.#epoch !== undefined) {
      this.#old = { epoch: this.#epoch, next: this.#next };
    }
    this.#epoch = undefined;
    this.#held = undefined;
    this.#blockedSince = undefined;
  }

  /**
   * The join was answered: the home had numbered `seq` messages of
   * `epoch` before it. Returns the early messages now in order.
   */
  start(epoch: number, seq: number, now: number): T[] {
    this.#epoch = epoch;
    this.#next = seq + 1;
    const early = this.#early ?? [];
    this.#early = undefined;
    early.sort((a, b) => a.seq - b.seq);
    return early.flatMap((m) => this.accept(m, now));
  }

  /** A message arrived: returns the messages now deliverable, in order. */
  accept(m: Numbered<T>, now: number): T[] {
    if (this.#old && m.epoch === this.#old.epoch && m.epoch !== this.#epoch) {
      if (m.seq < this.#old.next) {
        this.stats.stale++;
        return [];
      }
      this.#old.next = m.seq + 1;
      return [m.value];
    }
    if (this.#epoch === undefined) {
      (this.#early ??= []).push(m);
      return [];
    }
    if (m.epoch !== this.#epoch || m.seq < this.#next) {
      this.stats.stale++;
      return [];
    }
    if (m.seq > this.#next) {
      (this.#held ??= new Map()).set(m.seq, m.value);
      this.#blockedSince ??= now;
      return [];
    }
    const out = [m.value];
    this.#next++;
    this.#drain(out);
    return out;
  }

  /** Gives up on a gap open since before `now - timeoutMs`. */
  expire(now: number, timeoutMs: number): T[] {
    if (
      this.#blockedSince === undefined || now - this.#blockedSince < timeoutMs
    ) return [];
    const first = Math.min(...this.#held!.keys());
    this.stats.skipped += first - this.#next;
    this.#next = first;
    const out: T[] = [];
    this.#drain(out);
    return out;
  }

  #drain(out: T[]): void {
    const held = this.#held;
    if (!held) return;
    for (let v = held.get(this.#next); v !== undefined;) {
      held.delete(this.#next);
      out.push(v);
      v = held.get(++this.#next);
    }
    if (held.size === 0) {
      this.#held = undefined;
      this.#blockedSince = undefined;
    }
  }
}
