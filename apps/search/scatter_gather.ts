import { mergeShardStats, statsRequestFor } from "./global_stats.ts";
import { compareHits } from "./hit_order.ts";
import { kwayMerge } from "./kway_merge.ts";
import type { ParsedQuery } from "./query_parser.ts";
import type { ShardIndex } from "./shard_index.ts";
import type { ShardHit } from "./searcher.ts";

/**
 * The coordinator's algorithm run in one process (tests, benchmarks):
 * gather term statistics from every shard (DFS), let each shard rank its
 * top `from + size` with the global statistics, and k-way merge the sorted
 * lists. Equal to one index over all the documents, hit for hit.
 */
export function scatterGather(
  shards: readonly ShardIndex[],
  query: ParsedQuery,
  from: number,
  size: number,
): ShardHit[] {
  const request = statsRequestFor(query);
  const context = mergeShardStats(shards.map((s) => s.stats(request)));
  const lists = shards.map((s) => s.search(query, from + size, context).hits);
  return kwayMerge(lists, compareHits, from + size).slice(from);
}
