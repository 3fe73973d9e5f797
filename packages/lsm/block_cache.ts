import type { DecodedBlock } from "./block.ts";

/** Bytes charged per cached block beyond its encoded size (arrays, views). */
const BLOCK_OVERHEAD = 64;
/** Bytes charged per entry of a cached block (two array slots, two views). */
const ENTRY_OVERHEAD = 48;

/**
 * Decoded SSTable data blocks kept in memory under a byte budget, least
 * recently used evicted first (a `Map` keeps insertion order; a hit
 * re-inserts). A block is charged its encoded size plus an estimate of the
 * decoded arrays.
 */
export class BlockCache {
  #map = new Map<string, { block: DecodedBlock; cost: number }>();
  #bytes = 0;
  /** Budget in bytes; 0 disables caching. */
  readonly budget: number;
  /** Lookups that found the block. */
  hits = 0;
  /** Lookups that did not. */
  misses = 0;

  /** @param budget bytes the cache may hold. */
  constructor(budget: number) {
    if (!Number.isSafeInteger(budget) || budget < 0) {
      throw new RangeError(`bad block cache budget ${budget}`);
    }
    this.budget = budget;
  }

  /** Bytes currently charged. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Blocks held. */
  get size(): number {
    return this.#map.size;
  }

  /** The cached block `block` of table `table`, if present (marks it recent). */
  get(table: number, block: number): DecodedBlock | undefined {
    const k = `${table}:${block}`;
    const hit = this.#map.get(k);
    if (hit === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.#map.delete(k);
    this.#map.set(k, hit);
    return hit.block;
  }

  /** Caches a block, evicting the least recently used past the budget. */
  set(table: number, block: number, value: DecodedBlock): void {
    const cost = value.bytes + BLOCK_OVERHEAD +
      value.keys.length * ENTRY_OVERHEAD;
    if (cost > this.budget) return;
    const k = `${table}:${block}`;
    const old = this.#map.get(k);
    if (old !== undefined) {
      this.#bytes -= old.cost;
      this.#map.delete(k);
    }
    this.#map.set(k, { block: value, cost });
    this.#bytes += cost;
    for (const [key, v] of this.#map) {
      if (this.#bytes <= this.budget) break;
      this.#map.delete(key);
      this.#bytes -= v.cost;
    }
  }

  /** Drops every block of `table` (after the table is deleted). */
  evictTable(table: number): void {
    const p = `${table}:`;
    for (const [key, v] of this.#map) {
      if (key.startsWith(p)) {
        this.#map.delete(key);
        this.#bytes -= v.cost;
      }
    }
  }
}
