import sortedBtree from "sorted-btree";
import { keyString } from "./bytes.ts";

// sorted-btree is CommonJS; under Deno its class sits one `default` deeper.
const BTree = sortedBtree.default;
type Tree = InstanceType<typeof sortedBtree.default<string, Entry>>;

const compareStrings = (a: string, b: string) => a < b ? -1 : a > b ? 1 : 0;

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
 * `null`. The tree's keys are the key bytes as strings ({@link keyString}):
 * the engine compares those natively, which makes a descent about 1.5x
 * faster than comparing `Uint8Array`s byte by byte in JavaScript (keys
 * with long common prefixes, such as a tablet's, were 30% of a row read).
 * Each key maps to its {@link Entry}, handed out as is by the iterators.
 * `bytes` approximates its memory, which decides when to flush.
 */
export class Memtable {
  // 128 keys a node (the library's default is 32): one level fewer at
  // 10^5–10^6 keys, so fewer nodes (each a likely cache miss) per descent;
  // inserts, reads and seeks were all faster than at 32 or 256.
  #tree: Tree = new BTree<string, Entry>(undefined, compareStrings, 128);
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
    const added = this.#tree.set(keyString(key), { key, value }, true);
    this.#bytes += (value === null ? 0 : value.length) +
      (added ? key.length + ENTRY_OVERHEAD : 0);
  }

  /** The value, `null` for a tombstone, undefined when the key is absent. */
  get(key: Uint8Array): Value | undefined {
    return this.#tree.get(keyString(key))?.value;
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
    const w = this.walk(start);
    return {
      next(): IteratorResult<Entry> {
        const e = w.next();
        return e === undefined
          ? { done: true, value: undefined }
          : { done: false, value: e };
      },
    };
  }

  /**
   * {@link cursor} giving the entries themselves (undefined at the end):
   * an `EntryCursor` for a range read that needs no merge (a lone
   * memtable).
   */
  walk(start?: Uint8Array): { next(): Entry | undefined } {
    // One pair array reused by the tree's iterator: no allocation per step.
    const pair: (string | Entry)[] = [];
    const it = this.#tree.clone().entries(
      start === undefined ? undefined : keyString(start),
      pair as [string, Entry],
    );
    return {
      next(): Entry | undefined {
        const r = it.next();
        return r.done ? undefined : r.value[1];
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
    const lo = keyString(start);
    const hi = keyString(end);
    if (lo >= hi) return out;
    this.#tree.forRange(lo, hi, false, (_, e) => {
      out.push(e);
    });
    return out;
  }
}
