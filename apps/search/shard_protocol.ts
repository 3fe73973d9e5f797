import { z } from "zod";
import { DocumentSchema } from "./document.ts";
import {
  ScoringContextSchema,
  ShardStatsSchema,
  StatsRequestSchema,
} from "./global_stats.ts";
import { ParsedQuerySchema } from "./query_parser.ts";

/** Most hits a shard returns for one query (the coordinator's from + size cap). */
export const MAX_SHARD_K = 1000;

/** `POST /internal/write`: documents to add (with `created` set) and ids to delete. */
export const ShardWriteSchema = z.object({
  add: z.array(DocumentSchema.extend({ created: z.number().finite() })).max(
    100_000,
  ),
  delete: z.array(z.string().min(1).max(256)).max(100_000),
});
/** See {@link ShardWriteSchema}. */
export type ShardWrite = z.infer<typeof ShardWriteSchema>;

/**
 * Header of `POST /internal/build`'s answer: the write's `{added, deleted}`
 * as JSON (the body is the write's log record, for `/internal/apply`).
 */
export const RESULT_HEADER = "x-search-result";

/** `POST /internal/stats`. */
export { ShardStatsSchema, StatsRequestSchema };

/** `POST /internal/search`: the parsed query, how many hits, and the global scoring context. */
export const ShardSearchSchema = z.object({
  query: ParsedQuerySchema,
  k: z.number().int().min(0).max(MAX_SHARD_K),
  context: ScoringContextSchema,
  /** Build snippets for the hits (default true). */
  snippets: z.boolean().default(true),
});
/** See {@link ShardSearchSchema}. */
export type ShardSearch = z.infer<typeof ShardSearchSchema>;

/** One hit as it travels from a shard to the coordinator and on to clients. */
export const WireHitSchema = z.object({
  id: z.string(),
  score: z.number(),
  user_id: z.number(),
  name: z.string(),
  created: z.number(),
  snippet: z.string(),
});
/** See {@link WireHitSchema}. */
export type WireHit = z.infer<typeof WireHitSchema>;

/** A shard's answer to a search. */
export const ShardSearchResultSchema = z.object({
  hits: z.array(WireHitSchema),
  scored: z.number().int(),
  strategy: z.enum(["wand", "boolean"]),
  tookMs: z.number(),
  /** Of tookMs, the time spent building snippets (and encoding hits). */
  snippetMs: z.number().default(0),
});
/** See {@link ShardSearchResultSchema}. */
export type ShardSearchResult = z.infer<typeof ShardSearchResultSchema>;

/** A user's document in listings (no body). */
export const UserDocSchema = z.object({
  id: z.string(),
  user_id: z.number(),
  name: z.string(),
  created: z.number(),
});
/** See {@link UserDocSchema}. */
export type UserDoc = z.infer<typeof UserDocSchema>;

/** `GET /internal/users/:id`. */
export const UserDocsResultSchema = z.object({
  total: z.number().int(),
  docs: z.array(UserDocSchema),
});
/** See {@link UserDocsResultSchema}. */
export type UserDocsResult = z.infer<typeof UserDocsResultSchema>;
