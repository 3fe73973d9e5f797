/** The least a ranked hit carries: its document id and score. */
export interface Ranked {
  id: string;
  score: number;
}

/**
 * The one result order everywhere (segment, shard, coordinator, single
 * index): higher score first, then smaller id (code-unit order), so equal
 * scores rank the same way however the documents are sharded.
 */
export function compareHits(a: Ranked, b: Ranked): number {
  if (a.score !== b.score) return a.score > b.score ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
