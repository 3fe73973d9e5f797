/**
 * Merges `lists`, each already sorted by `compare`, into one sorted list of
 * at most `limit` items with a binary heap of the list heads: O(n log S)
 * for n output items from S lists. Items that compare equal come out by
 * list index, then by position in their list, so the result is
 * deterministic (the coordinator's lists are shards in shard order).
 *
 * @param limit most items to return (default all).
 */
export function kwayMerge<T>(
  lists: readonly (readonly T[])[],
  compare: (a: T, b: T) => number,
  limit = Infinity,
): T[] {
  const out: T[] = [];
  // Heap of list indices; pos[i] is the head position of list i.
  const pos = new Int32Array(lists.length);
  const heap: number[] = [];
  const less = (a: number, b: number): boolean => {
    const c = compare(lists[a]![pos[a]!]!, lists[b]![pos[b]!]!);
    return c < 0 || (c === 0 && a < b);
  };
  const down = (i: number): void => {
    const n = heap.length;
    const x = heap[i]!;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && less(heap[c + 1]!, heap[c]!)) c++;
      if (!less(heap[c]!, x)) break;
      heap[i] = heap[c]!;
      i = c;
    }
    heap[i] = x;
  };
  for (let i = 0; i < lists.length; i++) {
    if (lists[i]!.length > 0) heap.push(i);
  }
  for (let i = (heap.length >> 1) - 1; i >= 0; i--) down(i);
  while (heap.length > 0 && out.length < limit) {
    const top = heap[0]!;
    const list = lists[top]!;
    out.push(list[pos[top]!]!);
    pos[top]!++;
    if (pos[top]! >= list.length) {
      const last = heap.pop()!;
      if (heap.length === 0) break;
      heap[0] = last;
    }
    down(0);
  }
  return out;
}

/**
 * The reference the merge must equal: concatenate, stable-sort, cut.
 * (Used by the property test and the benchmark.)
 */
export function concatSortMerge<T>(
  lists: readonly (readonly T[])[],
  compare: (a: T, b: T) => number,
  limit = Infinity,
): T[] {
  const all = lists.flat() as T[];
  all.sort(compare);
  return Number.isFinite(limit) ? all.slice(0, limit) : all;
}
