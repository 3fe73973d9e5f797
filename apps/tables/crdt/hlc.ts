/**
 * `hlc.ts`: hybrid logical clocks (Kulkarni et al.). A timestamp is the
 * wall-clock milliseconds a node believed, a logical counter that orders
 * events within one millisecond (or while the wall clock stands still or
 * steps back), and the node id that breaks the last tie, so two writes
 * never compare equal. The clock never goes backwards, whatever the wall
 * clock does, and takes a peer's timestamp into account only when it is
 * within `maxOffsetMs` of the local wall clock: a peer whose clock runs far
 * ahead cannot drag every replica's timestamps into the future.
 */

/** One hybrid logical timestamp. */
export interface Hlc {
  /** Wall-clock milliseconds (the physical part). */
  wall: number;
  /** Orders events with the same physical part. */
  logical: number;
  /** The node that made it (the last tie-breaker). */
  node: string;
}

/** Total order of timestamps: physical, then logical, then node id. */
export function compareHlc(a: Hlc, b: Hlc): number {
  if (a.wall !== b.wall) return a.wall < b.wall ? -1 : 1;
  if (a.logical !== b.logical) return a.logical < b.logical ? -1 : 1;
  return a.node < b.node ? -1 : a.node > b.node ? 1 : 0;
}

/** Options of {@link HybridClock}. */
export interface HybridClockOptions {
  /** This node's id. */
  node: string;
  /** The wall clock, ms since the epoch (default `Date.now`). */
  wallClock?: () => number;
  /**
   * Largest clock offset believed between two nodes (default 60 000 ms): a
   * remote timestamp further ahead of the local wall clock is not adopted.
   */
  maxOffsetMs?: number;
}

/** A node's hybrid logical clock. */
export class HybridClock {
  #wall = 0;
  #logical = 0;
  /** Remote timestamps that were too far ahead to adopt. */
  rejected = 0;
  readonly node: string;
  readonly #wallClock: () => number;
  readonly #maxOffset: number;

  /** @param o node id, wall clock, bound on the clock offset. */
  constructor(o: HybridClockOptions) {
    this.node = o.node;
    this.#wallClock = o.wallClock ?? Date.now;
    this.#maxOffset = o.maxOffsetMs ?? 60_000;
  }

  /** A timestamp for a local event, after every one given before. */
  now(): Hlc {
    const pt = this.#wallClock();
    if (pt > this.#wall) {
      this.#wall = pt;
      this.#logical = 0;
    } else {
      this.#logical++;
    }
    return { wall: this.#wall, logical: this.#logical, node: this.node };
  }

  /**
   * Takes a remote timestamp into account so that the next {@link now} is
   * after it. Refused (false, counted in {@link rejected}) when it is more
   * than `maxOffsetMs` ahead of the local wall clock.
   */
  observe(remote: Hlc): boolean {
    const pt = this.#wallClock();
    if (remote.wall - pt > this.#maxOffset) {
      this.rejected++;
      return false;
    }
    if (
      remote.wall > this.#wall ||
      (remote.wall === this.#wall && remote.logical > this.#logical)
    ) {
      this.#wall = remote.wall;
      this.#logical = remote.logical;
    }
    return true;
  }
}
