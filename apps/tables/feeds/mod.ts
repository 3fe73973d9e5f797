/**
 * Durable feeds on tables: partitioned append-only logs with consumer
 * groups (see feed_client.ts and README "Durable feeds").
 *
 * @module
 */
export {
  FeedClient,
  type FeedClientOptions,
  type FeedConfig,
  FeedError,
  type FeedMessage,
  type FetchedBatch,
  type ReadResult,
} from "./feed_client.ts";
export type { FeedErrorCode } from "./feed_error.ts";
export type { FeedStore } from "./feed_store.ts";
export { feedTable, partitionOf } from "./feed_layout.ts";
