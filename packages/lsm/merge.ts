import { compareBytes } from "./bytes.ts";
import type { Entry } from "./memtable.ts";

/**
 * A sorted source of entries as an iterator (plain or async, or one whose
 * `next` returns a promise only sometimes), for {@link mergeSorted} and
 * {@link entryCursor}.
 */
export type EntrySource =
  | Iterator<Entry>
  | AsyncIterator<Entry>
  | {
    next(): IteratorResult<Entry> | Promise<IteratorResult<Entry>>;
  };

/**
 * K-way merge of sorted sources, `sources[0]` the newest: each key once,
 * with the value of the newest source that has it (tombstones included;
 * the caller decides whether to drop them). `next` answers without a
 * promise unless a source must wait (a block read from a file that must
 * be waited for), so a scan over blocks and memtables costs no turn of the
 * event loop per entry. The sources are {@link EntryCursor}s (entries
 * themselves, no iterator result object per entry; {@link entryCursor}
 * adapts an iterator). The next head is the smallest of the sources'
 * current entries, found in one pass that also notes the sources holding
 * the same key (a linear pick: an LSM merges a handful of sources, where
 * a heap gains nothing).
 */
export class MergeCursor implements EntryCursor {
  #sources: readonly EntryCursor[];
  #heads: (Entry | undefined)[];
  /**
   * Sources whose head was consumed and must advance before the next
   * pick: the first {@link #staleCount} slots of an array that keeps its
   * length (one slot per source). Emptying an array (`length = 0`) drops
   * its backing store and the next `push` allocates a new one, several
   * times per entry (a quarter of a seek's allocations in a heap
   * profile); a typed array instead costs its own backing store per
   * cursor (one per row read).
   */
  #stale: number[];
  #staleCount: number;

  /** @param sources sorted sources, newest first. */
  constructor(sources: readonly EntryCursor[]) {
    this.#sources = sources;
    this.#heads = sources.map(() => undefined);
    this.#stale = sources.map((_, i) => i);
    this.#staleCount = sources.length;
  }

  /** The next entry, undefined at the end; a promise only when a source waits. */
  next(): Entry | undefined | Promise<Entry | undefined> {
    const heads = this.#heads;
    const stale = this.#stale;
    while (this.#staleCount > 0) {
      const i = stale[this.#staleCount - 1]!;
      const r = this.#sources[i]!.next();
      if (r instanceof Promise) {
        return r.then((x) => {
          heads[i] = x;
          this.#staleCount--;
          return this.next();
        });
      }
      heads[i] = r;
      this.#staleCount--;
    }
    let min: Entry | undefined;
    let n = 0;
    for (let i = 0; i < heads.length; i++) {
      const h = heads[i];
      if (h === undefined) continue;
      // Strictly smaller wins; on a tie the earlier (newer) source stays
      // and the later one is skipped past the key too.
      const c = min === undefined ? -1 : compareBytes(h.key, min.key);
      if (c < 0) {
        min = h;
        stale[0] = i;
        n = 1;
      } else if (c === 0) {
        stale[n++] = i;
      }
    }
    this.#staleCount = n;
    return min;
  }
}

/** An {@link EntrySource} (an iterator of entries) as an {@link EntryCursor}. */
export function entryCursor(source: EntrySource): EntryCursor {
  return {
    next(): Entry | undefined | Promise<Entry | undefined> {
      const r = source.next();
      if (r instanceof Promise) {
        return r.then((x) => x.done ? undefined : x.value);
      }
      return r.done ? undefined : r.value;
    },
  };
}

/** What a {@link MergeCursor} or an {@link ArrayCursor} gives: the next entry, a promise only when a source waits. */
export interface EntryCursor {
  next(): Entry | undefined | Promise<Entry | undefined>;
}

/**
 * The entries of one sorted array, as a {@link MergeCursor} of that one
 * source would give them, without the merge's bookkeeping: for a short
 * range gathered from a lone memtable (a row read).
 */
export class ArrayCursor implements EntryCursor {
  #entries: readonly Entry[];
  #i = 0;

  constructor(entries: readonly Entry[]) {
    this.#entries = entries;
  }

  next(): Entry | undefined {
    return this.#entries[this.#i++];
  }
}

/** {@link MergeCursor} as an async generator (`for await`). */
export async function* mergeSorted(
  sources: readonly EntrySource[],
): AsyncGenerator<Entry> {
  const cursor = new MergeCursor(sources.map(entryCursor));
  while (true) {
    let e = cursor.next();
    if (e instanceof Promise) e = await e;
    if (e === undefined) return;
    yield e;
  }
}
