import { z } from "zod";
import { type CollectionStats, statKey } from "./bm25.ts";
import type { ParsedQuery } from "./query_parser.ts";

/** Most index terms a `prefix*` clause expands to (the most frequent ones). */
export const MAX_PREFIX_EXPANSIONS = 64;

/** What the statistics phase asks each shard for. */
export const StatsRequestSchema = z.object({
  /** (field, term) keys from {@link statKey}. */
  keys: z.array(z.string().max(600)).max(4096),
  /** (field, prefix) keys whose matching terms to list. */
  prefixes: z.array(z.string().max(600)).max(256),
});
/** See {@link StatsRequestSchema}. */
export type StatsRequest = z.infer<typeof StatsRequestSchema>;

/** One shard's answer to a {@link StatsRequest}. */
export const ShardStatsSchema = z.object({
  docCount: z.number().int().min(0),
  fieldLength: z.record(z.string(), z.number().min(0)),
  df: z.record(z.string(), z.number().int().min(0)),
  /** For each prefix key, [term, df] of matching terms. */
  prefixes: z.record(
    z.string(),
    z.array(z.tuple([z.string(), z.number().int().min(0)])),
  ),
});
/** See {@link ShardStatsSchema}. */
export type ShardStats = z.infer<typeof ShardStatsSchema>;

/** Global statistics plus the chosen prefix expansions: what a shard needs to score exactly as one index. */
export const ScoringContextSchema = z.object({
  stats: z.object({
    docCount: z.number().int().min(0),
    fieldLength: z.record(z.string(), z.number().min(0)),
    df: z.record(z.string(), z.number().int().min(0)),
  }),
  /** For each prefix key, the terms it expands to, in scoring order. */
  expansions: z.record(z.string(), z.array(z.string())),
});
/** See {@link ScoringContextSchema}. */
export type ScoringContext = z.infer<typeof ScoringContextSchema> & {
  stats: CollectionStats;
};

/** The statistics a query needs (DFS phase request). Pure. */
export function statsRequestFor(q: ParsedQuery): StatsRequest {
  const keys = new Set<string>();
  const prefixes = new Set<string>();
  for (const c of [...q.must, ...q.should]) {
    for (const f of c.fields) {
      if (c.kind === "term") keys.add(statKey(f, c.term));
      else if (c.kind === "phrase") {
        for (const t of c.terms) keys.add(statKey(f, t));
      } else prefixes.add(statKey(f, c.prefix));
    }
  }
  return { keys: [...keys], prefixes: [...prefixes] };
}

/**
 * Sums shard statistics into global ones and picks each prefix's
 * expansions (highest global df first, then term order), so every shard
 * expands `aero*` to the same terms and scores with the same numbers.
 * Summation runs in shard order; the values are integers, so the order does
 * not change them.
 */
export function mergeShardStats(shards: readonly ShardStats[]): ScoringContext {
  const stats: CollectionStats = { docCount: 0, fieldLength: {}, df: {} };
  const prefixDf = new Map<string, Map<string, number>>();
  for (const s of shards) {
    stats.docCount += s.docCount;
    for (const [f, n] of Object.entries(s.fieldLength)) {
      stats.fieldLength[f] = (stats.fieldLength[f] ?? 0) + n;
    }
    for (const [k, n] of Object.entries(s.df)) {
      stats.df[k] = (stats.df[k] ?? 0) + n;
    }
    for (const [pk, list] of Object.entries(s.prefixes)) {
      let m = prefixDf.get(pk);
      if (m === undefined) prefixDf.set(pk, m = new Map());
      for (const [t, n] of list) m.set(t, (m.get(t) ?? 0) + n);
    }
  }
  const expansions: Record<string, string[]> = {};
  for (const [pk, m] of prefixDf) {
    const field = pk.slice(0, pk.indexOf("\u0000"));
    const chosen = [...m].sort((a, b) =>
      b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)
    )
      .slice(0, MAX_PREFIX_EXPANSIONS);
    expansions[pk] = chosen.map(([t]) => t);
    for (const [t, n] of chosen) stats.df[statKey(field, t)] = n;
  }
  return { stats, expansions };
}
