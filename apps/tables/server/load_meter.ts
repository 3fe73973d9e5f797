/**
 * The load of one open tablet, as its server measures it for the master's
 * split-by-load, merge and balancing decisions: writes and reads per
 * second over a sliding window on the monotonic clock, totals since the
 * tablet was opened here, and a sample of the row keys touched lately (a
 * ring of the most recent ones) from which a split key is chosen.
 */
import { Arena, compareBytes } from "@strata/lsm";
import type { PortRange } from "./tablet_port.ts";

/** Options of {@link LoadMeter}. */
export interface LoadMeterOptions {
  /** Width of the rate window, ms (default 10 000). */
  windowMs?: number;
  /** Slots the window is counted in (default 10). */
  slots?: number;
  /** Recent row keys kept for the split key (default 256). */
  sampleSize?: number;
  /** Monotonic clock, ms (default `performance.now`). */
  now?: () => number;
}

/** Rates and totals of one tablet. */
export interface LoadSnapshot {
  writesPerSec: number;
  readsPerSec: number;
  /** Writes since the tablet was opened on this server. */
  writes: number;
  /** Reads since the tablet was opened on this server. */
  reads: number;
}

/**
 * The row key that splits `keys` (row keys inside `range`) into two
 * halves of about equal count: their median, moved up to the first key
 * above the range's start (a tablet cannot be split at its own start).
 * Undefined when every key is the range's start or there are none: one
 * hot row cannot be split.
 */
export function medianSplitKey(
  keys: readonly Uint8Array[],
  range: PortRange,
): Uint8Array | undefined {
  const inside = keys.filter((k) =>
    compareBytes(k, range.start) > 0 &&
    (range.end === null || compareBytes(k, range.end) < 0)
  ).sort(compareBytes);
  if (inside.length === 0) return undefined;
  // Keys equal to the start fall to the left half whatever the key.
  return inside[Math.floor(inside.length / 2)]!;
}

/** Counts one tablet's operations on the monotonic clock. */
export class LoadMeter {
  readonly #windowMs: number;
  readonly #slotMs: number;
  readonly #now: () => number;
  readonly #opened: number;
  /** Per slot: [slot number, writes, reads]. */
  readonly #slots: Array<[number, number, number]>;
  readonly #sample: Uint8Array[] = [];
  /** Where the sampled keys' copies live (1 KiB or more: an array each). */
  readonly #keys = new Arena(4096);
  readonly #sampleSize: number;
  #next = 0;
  #writes = 0;
  #reads = 0;

  /** @param o window, slots, sample size and clock. */
  constructor(o: LoadMeterOptions = {}) {
    this.#windowMs = o.windowMs ?? 10_000;
    const slots = o.slots ?? 10;
    this.#slotMs = this.#windowMs / slots;
    this.#now = o.now ?? (() => performance.now());
    this.#opened = this.#now();
    this.#slots = Array.from({ length: slots }, () => [-1, 0, 0]);
    this.#sampleSize = o.sampleSize ?? 256;
  }

  #slot(): [number, number, number] {
    const n = Math.floor(this.#now() / this.#slotMs);
    const s = this.#slots[n % this.#slots.length]!;
    if (s[0] !== n) {
      s[0] = n;
      s[1] = 0;
      s[2] = 0;
    }
    return s;
  }

  #remember(key: Uint8Array): void {
    // A copy: a request's key is a view into a shared slab
    // (request_bytes.ts), which a kept view would hold whole. The copies
    // are carved from this meter's own chunks (a new typed array per
    // write cost ~0.35 µs).
    key = this.#keys.copy(key);
    if (this.#sample.length < this.#sampleSize) this.#sample.push(key);
    else this.#sample[this.#next] = key;
    this.#next = (this.#next + 1) % this.#sampleSize;
  }

  /** Counts a row write (mutation or check-and-mutate) of `key`. */
  write(key: Uint8Array): void {
    this.#slot()[1]++;
    this.#writes++;
    this.#remember(key);
  }

  /** Counts a row read or a scan starting at `key`. */
  read(key: Uint8Array): void {
    this.#slot()[2]++;
    this.#reads++;
    this.#remember(key);
  }

  /**
   * Rates over the window: the operations in the slots it covers divided
   * by the time covered (less than the window while the tablet is young,
   * but at least one slot, so a first burst does not read as a huge rate).
   */
  snapshot(): LoadSnapshot {
    const now = this.#now();
    const current = Math.floor(now / this.#slotMs);
    const oldest = current - this.#slots.length + 1;
    let writes = 0;
    let reads = 0;
    for (const [n, w, r] of this.#slots) {
      if (n >= oldest && n <= current) {
        writes += w;
        reads += r;
      }
    }
    const coveredMs = Math.max(
      this.#slotMs,
      Math.min(this.#windowMs, now - this.#opened),
    );
    return {
      writesPerSec: (writes * 1000) / coveredMs,
      readsPerSec: (reads * 1000) / coveredMs,
      writes: this.#writes,
      reads: this.#reads,
    };
  }

  /** The median of the recently touched keys inside `range` ({@link medianSplitKey}). */
  splitKey(range: PortRange): Uint8Array | undefined {
    return medianSplitKey(this.#sample, range);
  }
}
