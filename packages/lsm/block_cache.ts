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

/** A cached block in the recency list (most recent at the tail). */
interface Slot {
  key: number;
  block: DecodedBlock;
  cost: number;
  prev: Slot | undefined;
  next: Slot | undefined;
}

/**
 * Decoded SSTable data blocks kept in memory under a byte budget, least
 * recently used evicted first. A `Map` finds a block; its slot sits in a
 * doubly linked recency list, so a hit moves one slot to the tail and an
 * eviction takes the head, with no `Map` delete and re-insert per hit and
 * no iterator per eviction (both showed in the read path's profile). A
 * block is charged its encoded size plus an estimate of the decoded
 * arrays.
 */
export class BlockCache {
  #map = new Map<number, Slot>();
  /** Least recently used. */
  #head: Slot | undefined;
  /** Most recently used. */
  #tail: Slot | undefined;
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
    const slot = this.#map.get(cacheKey(table, block));
    if (slot === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    if (slot !== this.#tail) {
      this.#unlink(slot);
      this.#append(slot);
    }
    return slot.block;
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
    const key = cacheKey(table, block);
    const old = this.#map.get(key);
    if (old !== undefined) this.#remove(old);
    const slot: Slot = {
      key,
      block: value,
      cost,
      prev: undefined,
      next: undefined,
    };
    this.#map.set(key, slot);
    this.#append(slot);
    this.#bytes += cost;
    while (this.#bytes > this.budget) this.#remove(this.#head!);
  }

  /** Drops every block of `table` (after the table is deleted). */
  evictTable(table: number): void {
    for (let s = this.#head; s !== undefined;) {
      const next = s.next;
      if (Math.floor(s.key / BLOCKS_PER_TABLE) === table) this.#remove(s);
      s = next;
    }
  }

  #remove(slot: Slot): void {
    this.#unlink(slot);
    this.#map.delete(slot.key);
    this.#bytes -= slot.cost;
  }

  #unlink(slot: Slot): void {
    const { prev, next } = slot;
    if (prev === undefined) this.#head = next;
    else prev.next = next;
    if (next === undefined) this.#tail = prev;
    else next.prev = prev;
    slot.prev = slot.next = undefined;
  }

  #append(slot: Slot): void {
    const t = this.#tail;
    slot.prev = t;
    slot.next = undefined;
    if (t === undefined) this.#head = slot;
    else t.next = slot;
    this.#tail = slot;
  }
}
