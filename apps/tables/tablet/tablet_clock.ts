/**
 * The tablet's timestamp source: wall-clock milliseconds, but strictly
 * increasing per tablet and never going backwards when the wall clock
 * does (a step back leaves the tablet at its last timestamp + 1 until the
 * wall clock passes it). A tablet taking more than 1,000 mutations a
 * second runs ahead of the wall clock by the surplus, as a hybrid logical
 * clock does; TTLs are measured against {@link now}, which never goes back
 * either.
 */
export class TabletClock {
  #wall: () => number;
  #last: number;

  /** @param wall the wall clock (ms); @param floor a timestamp already used (from before a restart). */
  constructor(wall: () => number, floor = 0) {
    this.#wall = wall;
    this.#last = floor;
  }

  /** A new timestamp, greater than every one given before. */
  next(): number {
    const t = Math.max(Math.floor(this.#wall()), this.#last + 1);
    this.#last = t;
    return t;
  }

  /** The current time: the wall clock, or the last timestamp when that is ahead. */
  now(): number {
    return Math.max(Math.floor(this.#wall()), this.#last);
  }

  /** Makes every later timestamp greater than `t` (one already used elsewhere). */
  observe(t: number): void {
    if (t > this.#last) this.#last = t;
  }

  /** The last timestamp given. */
  get last(): number {
    return this.#last;
  }
}
