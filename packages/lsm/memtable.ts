import sortedBtree from "sorted-btree";
import { compareBytes } from "./bytes.ts";

// sorted-btree is CommonJS; under Deno its class sits one `default` deeper.
const BTree = sortedBtree.default;
type Tree = InstanceType<typeof sortedBtree.default<Uint8Array, Value>>;

/** A stored value; `null` is a tombstone (the key was deleted). */
export type Value = Uint8Array | null;

/** One key and its value or tombstone, as merged and stored in tables. */
export interface Entry {
  key: Uint8Array;
  value: Value;
}

/** Bytes charged per entry beyond key and value (tree node, pointers). */
const ENTRY_OVERHEAD = 48;

/**
 * The sorted in-memory table that takes writes until it is flushed to an
 * SSTable: a B+tree (sorted-btree) ordered byte-wise, holding tombstones as
 * `null`. `bytes` approximates its memory, which decides when to flush.
 */
export class Memtable {
  #tree: Tree = new BTree<Uint8Array, Value>(undefined, compareBytes);
  #bytes = 0;

  /** Bytes written: keys (once each), every value set, per-entry overhead. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Number of keys (tombstones included). */
  get size(): number {
    return this.#tree.size;
  }

  /**
   * Sets `key` to `value` (`null` = tombstone). One descent of the tree:
   * an overwritten value is not looked up, so its bytes stay counted
   * (`bytes` is what was written since the memtable started, as RocksDB's
   * memtable arena counts).
   */
  set(key: Uint8Array, value: Value): void {
    const added = this.#tree.set(key, value, true);
    this.#bytes += (value === null ? 0 : value.length) +
      (added ? key.length + ENTRY_OVERHEAD : 0);
  }

  /** The value, `null` for a tombstone, undefined when the key is absent. */
  get(key: Uint8Array): Value | undefined {
    return this.#tree.get(key);
  }

  /**
   * Entries with key `>= start` in order, over a copy-on-write clone, so
   * writes during the iteration neither disturb nor appear in it.
   */
  *entries(start?: Uint8Array): Generator<Entry> {
    const c = this.cursor(start);
    for (let r = c.next(); !r.done; r = c.next()) yield r.value;
  }

  /**
   * {@link entries} as a plain iterator (no generator), for merges: over a
   * copy-on-write clone, so writes during the iteration do not appear.
   */
  cursor(start?: Uint8Array): Iterator<Entry> {
    // One pair array reused by the tree's iterator: no allocation per step
    // beyond the entry handed out.
    const pair: (Uint8Array | Value)[] = [];
    const it = this.#tree.clone().entries(start, pair as [Uint8Array, Value]);
    return {
      next(): IteratorResult<Entry> {
        const r = it.next();
        return r.done ? { done: true, value: undefined } : {
          done: false,
          value: { key: r.value[0], value: r.value[1] },
        };
      },
    };
  }

  /**
   * The entries with `start <= key < end`, gathered now into an array (no
   * copy-on-write clone, which would make the next writes copy tree
   * nodes): for short ranges, such as one row, read at once.
   */
  range(start: Uint8Array, end: Uint8Array): Entry[] {
    const out: Entry[] = [];
    if (compareBytes(start, end) >= 0) return out;
    this.#tree.forRange(start, end, false, (key, value) => {
      out.push({ key, value });
    });
    return out;
  }
}
