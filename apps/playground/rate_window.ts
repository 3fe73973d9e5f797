/** Counter values read at one instant. */
export interface CounterScrape {
  /** When it was read (ms, any monotonic clock). */
  atMs: number;
  /** Counter name → value. */
  counters: Record<string, number>;
}

/**
 * Per-second rates of monotonic counters from successive scrapes, over a
 * sliding window so one late scrape does not make the figures jump. A
 * counter that goes down means the process restarted: the rate then counts
 * from zero instead of going negative.
 */
export class RateWindow {
  #scrapes: CounterScrape[] = [];

  /** @param windowMs span of scrapes kept for the rate (ms). */
  constructor(readonly windowMs = 2000) {}

  /** Adds a scrape (older ones beyond the window are dropped). */
  push(scrape: CounterScrape): void {
    const last = this.#scrapes.at(-1);
    if (last && scrape.atMs <= last.atMs) return;
    this.#scrapes.push(scrape);
    while (
      this.#scrapes.length > 2 &&
      scrape.atMs - this.#scrapes[1]!.atMs >= this.windowMs
    ) this.#scrapes.shift();
  }

  /** Forgets every scrape (the process went away). */
  reset(): void {
    this.#scrapes = [];
  }

  /**
   * Rate per second of each counter of the newest scrape; 0 for all of
   * them until two scrapes are known.
   */
  rates(): Record<string, number> {
    const out: Record<string, number> = {};
    const last = this.#scrapes.at(-1);
    if (!last) return out;
    const first = this.#scrapes[0]!;
    const seconds = (last.atMs - first.atMs) / 1000;
    for (const name of Object.keys(last.counters)) {
      if (seconds <= 0) {
        out[name] = 0;
        continue;
      }
      // Walk pairwise so a reset in the middle of the window counts right.
      let delta = 0;
      for (let i = 1; i < this.#scrapes.length; i++) {
        const prev = this.#scrapes[i - 1]!.counters[name] ?? 0;
        const next = this.#scrapes[i]!.counters[name] ?? 0;
        delta += next >= prev ? next - prev : next;
      }
      out[name] = delta / seconds;
    }
    return out;
  }
}
