// A tiny deterministic scheduler and PRNG for this package's tests (the
// real ones live in packages/sim; the transport only needs these shapes).
import type { RandomSource, Scheduler } from "./scheduler.ts";

/** Virtual time: events run in (time, scheduling order). */
export class TestScheduler implements Scheduler {
  #now = 0;
  #seq = 0;
  #events: { at: number; seq: number; fn: () => void }[] = [];

  now(): number {
    return this.#now;
  }

  schedule(atMs: number, fn: () => void): void {
    this.#events.push({ at: Math.max(atMs, this.#now), seq: this.#seq++, fn });
  }

  /** Runs events up to `untilMs`, letting promise callbacks settle after each. */
  async run(untilMs = Infinity, maxEvents = 100_000): Promise<void> {
    for (let n = 0; n < maxEvents; n++) {
      await new Promise((r) => setTimeout(r, 0));
      if (this.#events.length === 0) break;
      let best = 0;
      for (let i = 1; i < this.#events.length; i++) {
        const e = this.#events[i]!, b = this.#events[best]!;
        if (e.at < b.at || (e.at === b.at && e.seq < b.seq)) best = i;
      }
      if (this.#events[best]!.at > untilMs) break;
      const [event] = this.#events.splice(best, 1);
      this.#now = event!.at;
      event!.fn();
    }
    if (untilMs !== Infinity) this.#now = Math.max(this.#now, untilMs);
    await new Promise((r) => setTimeout(r, 0));
  }
}

/** mulberry32: a small seeded PRNG giving [0, 1). */
export function seededRandom(seed: number): RandomSource {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
