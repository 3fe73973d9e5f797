/**
 * `eviction.ts`: Redis' `maxmemory` for the memory tablets a tablet
 * server's RESP listener serves. When the bytes held are over the bound,
 * a write either evicts keys first or is refused, by policy:
 *
 * - `noeviction`: writes that could add memory are refused (`-OOM`);
 *   reads and deletes go on.
 * - `allkeys-lru`: Redis' approximated LRU. Each round samples
 *   `samples` random keys of every tablet into a pool of the 16 best
 *   candidates (least recently accessed first), then evicts the best
 *   candidate not accessed since it was sampled.
 * - `allkeys-random`: a random key.
 * - `volatile-lru`: as allkeys-lru, among keys with an expiry only; with
 *   none left, writes are refused like noeviction.
 *
 * Pure apart from the tablets it is handed: no timers, no I/O.
 */
import type { MemoryTablet } from "./memory_tablet.ts";

/** The policies, with Redis' names. */
export const EVICTION_POLICIES = [
  "noeviction",
  "allkeys-lru",
  "allkeys-random",
  "volatile-lru",
] as const;

/** One of {@link EVICTION_POLICIES}. */
export type EvictionPolicy = typeof EVICTION_POLICIES[number];

/** Longest time one write spends evicting, ms. */
const MAX_EVICT_MS = 2;

/** Redis' eviction pool size. */
const POOL_SIZE = 16;

interface Candidate {
  t: MemoryTablet;
  k: string;
  lru: number;
}

/**
 * Parses a Redis memory size: a byte count, or with a unit (`kb`, `mb`,
 * `gb` = 1024^n; `k`, `m`, `g` = 1000^n), case-insensitive; undefined when
 * not one.
 */
export function parseMemorySize(text: string): number | undefined {
  const m = /^(\d{1,15})(k|kb|m|mb|g|gb)?$/i.exec(text.trim());
  if (!m) return undefined;
  const unit = (m[2] ?? "").toLowerCase();
  const mult: Record<string, number> = {
    "": 1,
    k: 1e3,
    kb: 1024,
    m: 1e6,
    mb: 1024 ** 2,
    g: 1e9,
    gb: 1024 ** 3,
  };
  const n = Number(m[1]) * mult[unit]!;
  return Number.isSafeInteger(n) ? n : undefined;
}

/** The bound and policy of one server, and what it evicted. */
export class Evictor {
  /** The bound in bytes; 0 = none (Redis' default on 64-bit). */
  maxBytes: number;
  policy: EvictionPolicy;
  /** Keys sampled per tablet per round (Redis' maxmemory-samples). */
  samples: number;
  /** Keys evicted so far (INFO's evicted_keys). */
  evicted = 0;
  #pool: Candidate[] = [];

  /** @param o bound (bytes), policy and samples (default 5). */
  constructor(
    o: { maxBytes: number; policy: EvictionPolicy; samples?: number },
  ) {
    this.maxBytes = o.maxBytes;
    this.policy = o.policy;
    this.samples = o.samples ?? 5;
  }

  /** Bytes the tablets hold (their approximate sizes). */
  static used(tablets: readonly MemoryTablet[]): number {
    let n = 0;
    for (const t of tablets) n += t.approximateBytes();
    return n;
  }

  /**
   * Brings the tablets under the bound before a write that may add
   * memory: true when the write may go ahead (under the bound, or keys
   * were evicted until it is or for 2 ms), false when it must be refused
   * (`-OOM`: noeviction, or nothing eligible to evict).
   */
  makeRoom(tablets: readonly MemoryTablet[]): boolean {
    if (this.maxBytes <= 0) return true;
    let used = Evictor.used(tablets);
    if (used <= this.maxBytes) return true;
    if (this.policy === "noeviction") return false;
    // At most ~2 ms per write (Redis bounds it too): a bound lowered far
    // below the data must not stall the event loop (and the kv lease
    // renewals on it); the write goes ahead and later writes go on evicting.
    const started = performance.now();
    for (let n = 1; used > this.maxBytes; n++) {
      const freed = this.#evictOne(tablets);
      if (freed === undefined) return false; // nothing (eligible) left
      used -= freed;
      if (n % 32 === 0 && performance.now() - started > MAX_EVICT_MS) break;
    }
    return true;
  }

  /** Evicts one key; the bytes freed, or undefined when none is eligible. */
  #evictOne(tablets: readonly MemoryTablet[]): number | undefined {
    if (this.policy === "allkeys-random") {
      for (let tries = 0; tries < 16; tries++) {
        const withKeys = tablets.filter((t) => t.rowCount > 0);
        if (withKeys.length === 0) return undefined;
        const t = withKeys[Math.floor(Math.random() * withKeys.length)]!;
        const [c] = t.sample(1);
        if (!c) continue;
        const freed = t.evict(c.k, c.lru);
        if (freed > 0) return this.#counted(freed);
      }
      return undefined;
    }
    // LRU: refill the pool, evict its oldest still-valid candidate; a
    // candidate touched since (its lru moved) is dropped and the next
    // tried. Bounded rounds: a pool that keeps going stale gives up.
    for (let round = 0; round < 64; round++) {
      this.#fill(tablets);
      while (this.#pool.length > 0) {
        const c = this.#pool.shift()!;
        if (c.t.closed) continue;
        const freed = c.t.evict(c.k, c.lru);
        if (freed > 0) return this.#counted(freed);
      }
      if (!tablets.some((t) => t.rowCount > 0)) return undefined;
      if (
        this.policy === "volatile-lru" &&
        !tablets.some((t) => t.volatileCount > 0)
      ) return undefined;
    }
    return undefined;
  }

  #counted(freed: number): number {
    this.evicted++;
    return freed;
  }

  /** Samples every tablet into the pool, oldest access first, ≤ 16 kept. */
  #fill(tablets: readonly MemoryTablet[]): void {
    const volatile = this.policy === "volatile-lru";
    for (const t of tablets) {
      if (t.closed) continue;
      const picked = volatile
        ? t.sampleVolatile(this.samples)
        : t.sample(this.samples);
      for (const s of picked) {
        if (this.#pool.some((c) => c.t === t && c.k === s.k)) continue;
        const full = this.#pool.length >= POOL_SIZE;
        if (full && s.lru >= this.#pool[this.#pool.length - 1]!.lru) continue;
        let i = this.#pool.findIndex((c) => c.lru > s.lru);
        if (i < 0) i = this.#pool.length;
        this.#pool.splice(i, 0, { t, k: s.k, lru: s.lru });
        if (this.#pool.length > POOL_SIZE) this.#pool.pop();
      }
    }
  }
}
