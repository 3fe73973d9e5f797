import { compareBytes } from "./bytes.ts";
import type { Entry } from "./memtable.ts";

/** A sorted source of entries for {@link mergeSorted}. */
export type EntrySource = Iterator<Entry> | AsyncIterator<Entry>;

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
  for (const s of sources) heads.push(await next(s));
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
        heads[i] = await next(sources[i]!);
      }
    }
    yield out;
  }
}

async function next(s: EntrySource): Promise<Entry | undefined> {
  const r = await s.next();
  return r.done ? undefined : r.value;
}
