import { compareBytes } from "./bytes.ts";
import type { Entry } from "./memtable.ts";

/**
 * A sorted source of entries for {@link mergeSorted}: a plain or async
 * iterator, or one whose `next` returns a promise only sometimes (a table
 * cursor that reads a block only on a cache miss).
 */
export type EntrySource =
  | Iterator<Entry>
  | AsyncIterator<Entry>
  | {
    next(): IteratorResult<Entry> | Promise<IteratorResult<Entry>>;
  };

/**
 * K-way merge of sorted sources, `sources[0]` the newest: yields each key
 * once, with the value of the newest source that has it (tombstones
 * included; the caller decides whether to drop them). The next head is the
 * smallest among the sources' current entries (a linear pick: an LSM
 * merges a handful of sources, where a heap gains nothing).
 */
export async function* mergeSorted(
  sources: readonly EntrySource[],
): AsyncGenerator<Entry> {
  const heads: (Entry | undefined)[] = [];
  for (const s of sources) {
    const h = next(s);
    heads.push(h instanceof Promise ? await h : h);
  }
  while (true) {
    let min = -1;
    for (let i = 0; i < heads.length; i++) {
      const h = heads[i];
      if (h === undefined) continue;
      // Strictly smaller wins; on a tie the earlier (newer) source stays.
      if (min === -1 || compareBytes(h.key, heads[min]!.key) < 0) min = i;
    }
    if (min === -1) return;
    const out = heads[min]!;
    for (let i = 0; i < heads.length; i++) {
      const h = heads[i];
      if (h !== undefined && compareBytes(h.key, out.key) === 0) {
        const h = next(sources[i]!);
        heads[i] = h instanceof Promise ? await h : h;
      }
    }
    yield out;
  }
}

function next(s: EntrySource): Entry | undefined | Promise<Entry | undefined> {
  const r = s.next();
  if (r instanceof Promise) return r.then((x) => x.done ? undefined : x.value);
  return r.done ? undefined : r.value;
}
