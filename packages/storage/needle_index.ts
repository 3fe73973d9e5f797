import type { NeedleLocation } from "./needle_index_checkpoint.ts";

/** An index entry: the location itself, chained to the key's other altKeys. */
interface Node extends NeedleLocation {
  next: Node | null;
}

/**
 * The in-memory needle index: (key, altKey) → location. Keyed by the
 * number `key` with a short chain per key for its alternate keys, because a
 * numeric Map lookup is several times cheaper than building and hashing a
 * composite string key on every get, and a chain costs less memory than a
 * Map per key. Entries are the chain nodes themselves: one pointer less to
 * follow on the hot path of a get.
 */
export class NeedleIndex {
  #map = new Map<number, Node>();
  #size = 0;

  /** Live entries. */
  get size(): number {
    return this.#size;
  }

  /** The location of (key, altKey), or undefined. */
  get(key: number, altKey: number): NeedleLocation | undefined {
    for (let n: Node | null = this.#map.get(key) ?? null; n; n = n.next) {
      if (n.altKey === altKey) return n;
    }
    return undefined;
  }

  /** True when (key, altKey) is present. */
  has(key: number, altKey: number): boolean {
    return this.get(key, altKey) !== undefined;
  }

  /** Adds or replaces the entry for `loc.key`, `loc.altKey` (copying `loc`). */
  set(loc: NeedleLocation): void {
    const head = this.#map.get(loc.key) ?? null;
    let prev: Node | null = null;
    for (let n = head; n !== null; n = n.next) {
      if (n.altKey === loc.altKey) {
        const node = { ...copy(loc), next: n.next };
        if (prev === null) this.#map.set(loc.key, node);
        else prev.next = node;
        return;
      }
      prev = n;
    }
    this.#map.set(loc.key, { ...copy(loc), next: head });
    this.#size++;
  }

  /**
   * Removes (key, altKey); with `atOffset`, only while the entry is still
   * the needle at that offset. @returns whether an entry was removed.
   */
  delete(key: number, altKey: number, atOffset?: number): boolean {
    let prev: Node | null = null;
    for (let n = this.#map.get(key) ?? null; n !== null; n = n.next) {
      if (n.altKey !== altKey) {
        prev = n;
        continue;
      }
      if (atOffset !== undefined && n.offset !== atOffset) return false;
      if (prev === null) {
        if (n.next === null) this.#map.delete(key);
        else this.#map.set(key, n.next);
      } else prev.next = n.next;
      this.#size--;
      return true;
    }
    return false;
  }

  /** Every entry (copies, in no particular order). */
  *values(): IterableIterator<NeedleLocation> {
    for (const head of this.#map.values()) {
      for (let n: Node | null = head; n !== null; n = n.next) yield copy(n);
    }
  }
}

function copy(l: NeedleLocation): NeedleLocation {
  return {
    key: l.key,
    altKey: l.altKey,
    offset: l.offset,
    size: l.size,
    flags: l.flags,
  };
}
