/**
 * @module
 * strata search: a sharded inverted index with BM25 (per-field boosts),
 * block-max WAND top-k, DFS-style global term statistics so a sharded
 * top-n is identical to one index's, a k-way heap merge, checksummed
 * segment files with a write-ahead log, background merges and tombstones,
 * and the multi-process cluster (shard replica processes + a coordinator
 * with adaptive replica selection, retries and `partial: true`) behind a
 * Hono HTTP API.
 *
 * @example
 * ```ts
 * import { Analyzer, parseQuery, scatterGather, ShardIndex, shardOf } from "@strata/search";
 *
 * const docs = [
 *   { id: "1", user_id: 7, name: "Heat transfer in slabs", body: "conduction in composite slabs", created: 1 },
 *   { id: "2", user_id: 8, name: "Wing flutter", body: "flutter of a heated wing panel", created: 2 },
 * ];
 * // One index…
 * const one = new ShardIndex();
 * one.add(docs);
 * const q = parseQuery('heat* "composite slabs" OR flutter', new Analyzer());
 * console.log(one.searchLocal(q, 10).hits.map((h) => [h.id, h.score]));
 * // …or three shards, scatter-gathered: the same hits and scores.
 * const shards = [0, 1, 2].map(() => new ShardIndex());
 * for (const d of docs) shards[shardOf(d.id, 3)]!.add([d]);
 * console.log(scatterGather(shards, q, 0, 10).map((h) => [h.id, h.score]));
 * ```
 */
export {
  type AnalyzedText,
  Analyzer,
  type AnalyzerOptions,
  ENGLISH_STOP_WORDS,
} from "./analyzer.ts";
export { porterStem } from "./stemmer.ts";
export {
  BLOCK_SIZE,
  NO_MORE_DOCS,
  PostingCursor,
  type PostingsData,
  PostingsWriter,
  type TermPostings,
} from "./postings.ts";
export {
  type Bm25Params,
  type CollectionStats,
  CombinedFieldScorer,
  DEFAULT_BM25,
  idf,
  statKey,
  TermScorer,
} from "./bm25.ts";
export {
  DEFAULT_FIELD_BOOSTS,
  DocumentSchema,
  MAX_DOCUMENT_CHARS,
  type SearchDocument,
  type StoredDocument,
  TEXT_FIELDS,
  type TextField,
} from "./document.ts";
export {
  buildSegment,
  decodeSegment,
  encodeSegment,
  type FieldTerms,
  Segment,
  SEGMENT_KIND,
  SEGMENT_VERSION,
} from "./segment.ts";
export { type MergeInput, mergeSegments } from "./segment_merge.ts";
export {
  type Clause,
  ClauseSchema,
  matchQuery,
  MAX_QUERY_CHARS,
  MAX_QUERY_CLAUSES,
  MAX_QUERY_TERMS,
  type ParsedQuery,
  ParsedQuerySchema,
  type ParseOptions,
  parseQuery,
} from "./query_parser.ts";
export { MAX_SCORED_TERMS, pruneQuery } from "./query_pruning.ts";
export { QUERY_STOP_WORDS } from "./query_stop_words.ts";
export {
  blockMaxWand,
  CombinedFieldPart,
  CombinedTerm,
  FieldTermList,
  type ScoredList,
  type WandList,
} from "./wand.ts";
export {
  type ExecuteOptions,
  executeQuery,
  type ExecuteResult,
  phraseFreq,
  type SegmentView,
  type ShardHit,
} from "./searcher.ts";
export { TopK } from "./top_k.ts";
export { concatSortMerge, kwayMerge } from "./kway_merge.ts";
export { compareHits, type Ranked } from "./hit_order.ts";
export {
  MAX_PREFIX_EXPANSIONS,
  mergeShardStats,
  type ScoringContext,
  ScoringContextSchema,
  type ShardStats,
  ShardStatsSchema,
  type StatsRequest,
  statsRequestFor,
  StatsRequestSchema,
} from "./global_stats.ts";
export {
  compareNewest,
  type SegmentHandle,
  ShardIndex,
  type ShardIndexOptions,
} from "./shard_index.ts";
export {
  MANIFEST_KIND,
  type ShardRecovery,
  ShardStore,
  type ShardStoreOptions,
  type WriteOps,
} from "./shard_store.ts";
export { scatterGather } from "./scatter_gather.ts";
export { shardOf } from "./shard_routing.ts";
export {
  ReplicaSelector,
  type ReplicaSelectorOptions,
} from "./replica_selector.ts";
export { snippet } from "./highlight.ts";
export { createShardApp, type ShardIdentity } from "./shard_app.ts";
export {
  type CoordinatorConfig,
  CoordinatorConfigSchema,
  createCoordinatorApp,
  MAX_BULK_BYTES,
  MAX_BULK_DOCS,
  MAX_PAGE_SIZE,
  MAX_RESULT_WINDOW,
} from "./coordinator_app.ts";
export {
  MAX_SHARD_K,
  type ShardSearch,
  type ShardSearchResult,
  type ShardWrite,
  type WireHit,
} from "./shard_protocol.ts";
export {
  type Cluster,
  type ClusterOptions,
  type ServiceProcess,
  spawnService,
  startCluster,
} from "./cluster.ts";
export { readSpamAssassin, SPAM_ASSASSIN_DIR, userIdOf } from "./corpus.ts";
export {
  decodeEncodedWords,
  type ParsedMail,
  parseMail,
} from "./mail_parser.ts";
export {
  type Cranfield,
  CRANFIELD_DIR,
  CRANFIELD_INDEX_OPTIONS,
  loadCranfield,
  parseCranDocs,
  parseCranQrels,
  parseCranQueries,
} from "./cranfield.ts";
export {
  COLLECTION_NAMES,
  type CollectionName,
  loadCollection,
  type TestCollection,
} from "./test_collections.ts";
export { HintedHandoff, type ReplicaIo } from "./hinted_handoff.ts";
export {
  BehindMarks,
  type BehindReplica,
  type BehindStore,
} from "./behind_marks.ts";
export {
  type ClusterStatus,
  DEFAULT_BATCH,
  readSearchToken,
  SearchClient,
  SearchClientError,
  type SearchClientOptions,
  type SearchHit,
  type SearchOptions,
  type SearchResult,
  type UserDocs,
} from "./client/client.ts";
export {
  averagePrecision,
  type Judgements,
  ndcgAt,
  type RunScores,
  scoreRun,
} from "./relevance_metrics.ts";
export {
  seededRandom,
  syntheticCorpus,
  type SyntheticOptions,
  syntheticQueries,
  ZipfVocabulary,
} from "./synthetic_corpus.ts";
export {
  isSearchError,
  SearchError,
  type SearchErrorCode,
} from "./search_error.ts";
