import { compareBytes, hasPrefix } from "./bytes.ts";
import type { Entry } from "./memtable.ts";
import type { EntryCursor } from "./merge.ts";
import type { SSTable } from "./sstable.ts";

/** A live entry a {@link LsmCursor} returns: views into stored bytes. */
export interface StoredEntry {
  key: Uint8Array;
  value: Uint8Array;
}

/**
 * A range read over a store without copying (see `LsmStore.cursor`): the
 * live entries in key order, tombstones and shadowed versions merged away.
 * `next` answers without a promise unless a table block must be read, so a
 * reader of memtables and cached blocks runs in one turn of the event
 * loop. The keys and values are views into the store's own bytes
 * (memtable nodes and blocks, whose bytes never change once written): the
 * caller copies what it keeps past its read, and must not change them.
 * `close` releases the tables the cursor holds (a compaction deletes
 * their files only after that); it is idempotent, and the end of the
 * range closes too.
 */
export class LsmCursor {
  #merged: EntryCursor;
  #end: Uint8Array | undefined;
  #prefix: Uint8Array | undefined;
  #tables: readonly SSTable[];
  #left: number;
  #open = true;

  /**
   * @param merged the entries from `start` on, newest version of each key;
   * @param end, prefix where the range ends (undefined when `merged`
   *   stops there itself);
   * @param tables referenced by the caller; released by {@link close}.
   */
  constructor(
    merged: EntryCursor,
    end: Uint8Array | undefined,
    prefix: Uint8Array | undefined,
    tables: readonly SSTable[],
    limit: number,
  ) {
    this.#merged = merged;
    this.#end = end;
    this.#prefix = prefix;
    this.#tables = tables;
    this.#left = limit;
  }

  /** The next live entry, undefined at the end; a promise only when a block must be read. */
  next(): StoredEntry | undefined | Promise<StoredEntry | undefined> {
    while (this.#open) {
      if (this.#left <= 0) return this.#finish();
      let e: Entry | undefined | Promise<Entry | undefined>;
      try {
        e = this.#merged.next();
      } catch (err) {
        // A block read in this turn failed (corrupt): as with one waited for.
        this.close();
        throw err;
      }
      if (e instanceof Promise) {
        return e.then((x) => this.#accept(x) ?? this.next(), (err) => {
          this.close();
          throw err;
        });
      }
      const r = this.#accept(e);
      if (r !== null) return r;
    }
    return undefined;
  }

  /** The entry to return, undefined at the end, null for a tombstone (skip). */
  #accept(e: Entry | undefined): StoredEntry | undefined | null {
    if (
      e === undefined ||
      (this.#end !== undefined && compareBytes(e.key, this.#end) >= 0) ||
      (this.#prefix !== undefined && !hasPrefix(e.key, this.#prefix))
    ) {
      return this.#finish();
    }
    if (e.value === null) return null;
    this.#left--;
    return e as StoredEntry;
  }

  #finish(): undefined {
    this.close();
    return undefined;
  }

  /** Releases the tables; later calls of {@link next} return undefined. */
  close(): void {
    if (!this.#open) return;
    this.#open = false;
    for (const t of this.#tables) t.unref();
  }
}
