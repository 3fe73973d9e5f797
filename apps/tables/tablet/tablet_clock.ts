/**
 * The tablet's timestamp source: wall-clock milliseconds, never going
 * backwards for the tablet (a step back of the wall clock leaves the tablet
 * at its last timestamp until the wall clock passes it), and strictly
 * increasing per row: a write to a row gets a timestamp above every one its
 * row was given before.
 *
 * Rows share a timestamp when they are written in the same millisecond:
 * only a row's own versions and deletion markers need to be told apart by
 * time (markers hide what their row had before them), and a read "as of T"
 * takes every write stamped up to T. So the tablet's clock runs ahead of the
 * wall clock only when one row takes more than 1,000 mutations a second (it
 * then drags the tablet along, as a hybrid logical clock does: a write to
 * another row must not get a timestamp below one already acknowledged).
 * The rows' last timestamps are kept in {@link BUCKETS} slots by the row's
 * hash; two rows in one slot, written in one millisecond, take the next
 * millisecond, as one row would.
 *
 * TTLs are measured against {@link now}, which never goes back either.
 */
export class TabletClock {
  #wall: () => number;
  #last: number;
  /** Every later timestamp is above it: a restart's floor, or {@link observe}d. */
  #floor: number;
  /** A row's last timestamp, by its hash; 0 (below any floor + 1) if none. */
  #rows: Float64Array | undefined;

  /** @param wall the wall clock (ms); @param floor a timestamp already used (from before a restart). */
  constructor(wall: () => number, floor = 0) {
    this.#wall = wall;
    this.#last = floor;
    this.#floor = floor;
  }

  /**
   * A new timestamp: at or above every one given before, and above every
   * one given to rows of the same `rowHash` (a non-negative integer, e.g.
   * `rowHash(row)` from row_locks.ts). Without `rowHash`, above every one
   * given before and below every one given after, as if it wrote every row.
   */
  next(rowHash?: number): number {
    const wall = Math.floor(this.#wall());
    if (rowHash === undefined) {
      const t = Math.max(wall, this.#last + 1);
      this.#last = this.#floor = t;
      return t;
    }
    const rows = this.#rows ??= new Float64Array(BUCKETS);
    const slot = rowHash & (BUCKETS - 1);
    return rows[slot] = this.#after(wall, rows[slot]!);
  }

  /**
   * A new timestamp for a row whose newest timestamp is `prev` (0: none):
   * at or above every one given before, above `prev`. For a store that
   * keeps its rows' timestamps at hand (the memory tablet).
   */
  nextAfter(prev: number): number {
    return this.#after(Math.floor(this.#wall()), prev);
  }

  #after(wall: number, prev: number): number {
    const t = Math.max(wall, this.#last, this.#floor + 1, prev + 1);
    if (t > this.#last) this.#last = t;
    return t;
  }

  /** The current time: the wall clock, or the last timestamp when that is ahead. */
  now(): number {
    return Math.max(Math.floor(this.#wall()), this.#last);
  }

  /** Makes every later timestamp greater than `t` (one already used elsewhere). */
  observe(t: number): void {
    if (t > this.#last) this.#last = t;
    if (t > this.#floor) this.#floor = t;
  }

  /** The last timestamp given (or observed). */
  get last(): number {
    return this.#last;
  }
}

/**
 * Slots of rows' last timestamps per tablet (a power of two): 32 KiB, and a
 * tablet's random writes at a few thousand a second rarely put two rows in
 * one slot within a millisecond.
 */
export const BUCKETS = 4096;
