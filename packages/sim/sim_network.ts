import type { Prng } from "./prng.ts";
import type { Scheduler } from "./scheduler.ts";

/** How the simulated network misbehaves. Times in virtual ms, rates in [0, 1]. */
export interface NetworkFaults {
  /** Minimum one-way delay. */
  minDelayMs: number;
  /** Maximum one-way delay (uniform in between, which also reorders). */
  maxDelayMs: number;
  /** Probability a message is lost. */
  loss: number;
  /** Probability a message is delivered twice. */
  duplicate: number;
  /** Probability a message is held back by `longDelayMs` extra (long reordering). */
  longDelay: number;
  /** Extra delay of held-back messages. */
  longDelayMs: number;
}

/** A reliable, prompt network: 1–5 ms, nothing lost or duplicated. */
export const RELIABLE: NetworkFaults = {
  minDelayMs: 1,
  maxDelayMs: 5,
  loss: 0,
  duplicate: 0,
  longDelay: 0,
  longDelayMs: 0,
};

/** Message counters of a network. */
export interface NetworkStats {
  sent: number;
  delivered: number;
  dropped: number;
  bytes: number;
}

/**
 * A simulated message network between numbered endpoints: delay, loss,
 * duplication, reordering, and partitions (symmetric, asymmetric, isolated
 * nodes, swizzles). A link must be up both when a message is sent and when
 * it would arrive.
 */
export class SimNetwork<M> {
  faults: NetworkFaults;
  readonly stats: NetworkStats = {
    sent: 0,
    delivered: 0,
    dropped: 0,
    bytes: 0,
  };
  readonly #handlers = new Map<number, (msg: M, from: number) => void>();
  readonly #cut = new Set<number>();
  readonly #isolated = new Set<number>();

  constructor(
    readonly scheduler: Scheduler,
    readonly prng: Prng,
    faults: NetworkFaults = RELIABLE,
  ) {
    this.faults = { ...faults };
  }

  /** Attaches the receiver of endpoint `id` (replacing any previous one). */
  register(id: number, handler: (msg: M, from: number) => void): void {
    this.#handlers.set(id, handler);
  }

  /** Detaches endpoint `id`: messages to it are dropped (a crashed node). */
  unregister(id: number): void {
    this.#handlers.delete(id);
  }

  #key(from: number, to: number): number {
    return from * 1048576 + to;
  }

  /** True when a message from → to would currently get through. */
  linkUp(from: number, to: number): boolean {
    if (from === to) return true;
    if (this.#isolated.has(from) || this.#isolated.has(to)) return false;
    return !this.#cut.has(this.#key(from, to));
  }

  /** Sends `msg`; `bytes` is only counted. */
  send(from: number, to: number, msg: M, bytes = 0): void {
    this.stats.sent++;
    this.stats.bytes += bytes;
    const f = this.faults;
    if (!this.linkUp(from, to) || this.prng.chance(f.loss)) {
      this.stats.dropped++;
      return;
    }
    const copies = this.prng.chance(f.duplicate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      let delay = f.minDelayMs +
        this.prng.float() * (f.maxDelayMs - f.minDelayMs);
      if (this.prng.chance(f.longDelay)) {
        delay += this.prng.float() * f.longDelayMs;
      }
      this.scheduler.after(delay, () => this.#deliver(from, to, msg));
    }
  }

  #deliver(from: number, to: number, msg: M): void {
    const h = this.#handlers.get(to);
    if (!h || !this.linkUp(from, to)) {
      this.stats.dropped++;
      return;
    }
    this.stats.delivered++;
    h(msg, from);
  }

  /** Cuts node `id` off from everyone, both directions. */
  disconnect(id: number): void {
    this.#isolated.add(id);
  }

  /** Undoes {@link disconnect}. */
  connect(id: number): void {
    this.#isolated.delete(id);
  }

  /** True when `id` is not isolated. */
  connected(id: number): boolean {
    return !this.#isolated.has(id);
  }

  /** Cuts the one-way link from → to (asymmetric partition). */
  cut(from: number, to: number): void {
    this.#cut.add(this.#key(from, to));
  }

  /** Restores the one-way link from → to. */
  restore(from: number, to: number): void {
    this.#cut.delete(this.#key(from, to));
  }

  /** Splits `ids` into groups that only talk within themselves. */
  partition(groups: readonly (readonly number[])[]): void {
    this.#cut.clear();
    for (const g of groups) {
      for (const h of groups) {
        if (g === h) continue;
        for (const a of g) for (const b of h) this.cut(a, b);
      }
    }
  }

  /**
   * A "swizzle" (FoundationDB): picks a random subset of `ids`, cuts their
   * links one node at a time every `stepMs`, then restores them one at a
   * time in a different random order. Orders of failure and recovery that
   * a single partition never produces.
   */
  swizzle(ids: readonly number[], stepMs = 20): void {
    const subset = this.prng.shuffle(ids).slice(
      0,
      1 + this.prng.int(ids.length),
    );
    const links = (a: number) => ids.filter((b) => b !== a);
    subset.forEach((a, i) => {
      this.scheduler.after(i * stepMs, () => {
        for (const b of links(a)) {
          this.cut(a, b);
          this.cut(b, a);
        }
      });
    });
    const restoreOrder = this.prng.shuffle(subset);
    const base = subset.length * stepMs;
    restoreOrder.forEach((a, i) => {
      this.scheduler.after(base + (i + 1) * stepMs, () => {
        for (const b of links(a)) {
          // Only links whose other end is not still swizzled out.
          if (restoreOrder.indexOf(b) !== -1 && restoreOrder.indexOf(b) > i) {
            continue;
          }
          this.restore(a, b);
          this.restore(b, a);
        }
      });
    });
  }

  /** Removes every partition and reconnects every node. */
  heal(): void {
    this.#cut.clear();
    this.#isolated.clear();
  }
}
