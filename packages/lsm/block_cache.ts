import type { DecodedBlock } from "./block.ts";

/** Bytes charged per cached block beyond its encoded size (arrays, views). */
const BLOCK_OVERHEAD = 64;
/** Bytes charged per entry of a cached block (its four Int32 offsets). */
const ENTRY_OVERHEAD = 16;

/** Key space per table in the cache's numeric keys (2^24 blocks = 64 GiB of 4 KiB blocks). */
const BLOCKS_PER_TABLE = 2 ** 24;

/** A number, not a string, so a lookup allocates nothing. */
function cacheKey(table: number, block: number): number {
  if (block >= BLOCKS_PER_TABLE) {
    throw new RangeError("too many blocks in one table");
  }
  return table * BLOCKS_PER_TABLE + block;
}

/**
 * Decoded SSTable data blocks kept in memory under a byte budget, least
 * recently used evicted first (a `Map` keeps insertion order; a hit
 * re-inserts). A block is charged its encoded size plus an estimate of the
 * decoded arrays.
 */
export class BlockCache {
  #map = new Map<number, { block: DecodedBlock; cost: number }>();
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
    const k = cacheKey(table, block);
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

  /** The cached block without counting a hit or miss or reordering. */
  peek(table: number, block: number): DecodedBlock | undefined {
    return this.#map.get(cacheKey(table, block))?.block;
  }

  /** Caches a block, evicting the least recently used past the budget. */
  set(table: number, block: number, value: DecodedBlock): void {
    const cost = value.bytes + BLOCK_OVERHEAD +
      value.count * ENTRY_OVERHEAD;
    if (cost > this.budget) return;
    const k = cacheKey(table, block);
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
    for (const [key, v] of this.#map) {
      if (Math.floor(key / BLOCKS_PER_TABLE) === table) {
        this.#map.delete(key);
        this.#bytes -= v.cost;
      }
    }
  }
}
