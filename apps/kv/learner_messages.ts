/**
 * The learner protocol's messages (framed TCP, @strata/transport): a client
 * subscribes to a key prefix from a revision at any member, and the member
 * streams the committed changes under it. The zod schemas are the single
 * definition; the transport validates every frame against them.
 */
import { defineMessage, defineMessageSet } from "@strata/codec";
import { z } from "zod";
import { bytesSchema } from "./kv_commands.ts";

const revision = z.number().int().nonnegative();

/** Longest prefix a learner may subscribe to, characters. */
export const MAX_LEARNER_PREFIX = 4096;

/**
 * Client → member (a call): stream the changes under `prefix` from
 * revision `from` (inclusive). `from` 0 asks for a snapshot of the prefix
 * first (a new replica). Once per connection ({@link SubscribeMany} carries
 * many over one).
 */
export const Subscribe = defineMessage(
  "Subscribe",
  z.object({ prefix: z.string().max(MAX_LEARNER_PREFIX), from: revision }),
);

/** Member → client: the reply to {@link Subscribe}, with the member's applied revision. */
export const Subscribed = defineMessage(
  "Subscribed",
  z.object({ revision, oldestRevision: revision }),
);

/** One committed change: a put (value set) or a delete (value null). */
export const changeSchema = z.object({
  key: z.string(),
  value: bytesSchema.nullable(),
  revision,
});
/** One committed change of {@link Changes}. */
export type Change = z.infer<typeof changeSchema>;

/**
 * Member → client: every change under the prefix at revisions `from` …
 * `to` (inclusive), in order; after it the replica stands at `to`. A
 * message with no changes reports progress (the member applied up to `to`
 * and nothing under the prefix changed). `from` is always the replica's
 * revision + 1: anything else is a gap or a duplicate.
 */
export const Changes = defineMessage(
  "Changes",
  z.object({ from: revision, to: revision, changes: z.array(changeSchema) }),
);

/** A key of a snapshot: its value and the revision of its last write. */
export const snapshotEntrySchema = z.object({
  key: z.string(),
  value: bytesSchema,
  revision,
});
/** A key of {@link SnapshotChunk}. */
export type SnapshotEntry = z.infer<typeof snapshotEntrySchema>;

/**
 * Member → client: part of the prefix's state at `revision`, in key order;
 * the replica replaces its state with the chunks' union when `last` comes.
 * Sent for `from` 0 and when `from` is older than the member's history.
 */
export const SnapshotChunk = defineMessage(
  "SnapshotChunk",
  z.object({
    revision,
    entries: z.array(snapshotEntrySchema),
    last: z.boolean(),
  }),
);

/** Most subscriptions one multiplexed connection may carry ({@link SubscribeMany}). */
export const MAX_MUX_SUBSCRIPTIONS = 50_000;

/**
 * Client → member (a call), instead of {@link Subscribe}: many
 * subscriptions over this one connection, numbered 0 … n-1 in this order.
 * The member answers {@link Subscribed} and then streams {@link Packed}
 * blobs. Once per connection.
 */
export const SubscribeMany = defineMessage(
  "SubscribeMany",
  z.object({
    subscriptions: z.array(
      z.object({ prefix: z.string().max(MAX_LEARNER_PREFIX), from: revision }),
    ).min(1).max(MAX_MUX_SUBSCRIPTIONS),
  }),
);

/**
 * Member → client on a multiplexed connection: one pump's steps for every
 * subscription, packed with multi-packet compression (@strata/transport
 * `pack`). Packet i is subscription i's {@link SubscriptionStep}, or empty
 * when it has nothing this time.
 */
export const Packed = defineMessage("Packed", z.object({ blob: bytesSchema }));

/**
 * One subscription's step inside a {@link Packed} blob (a packet, not a
 * frame of the set): changes as in {@link Changes}, or a whole snapshot
 * of the prefix as in {@link SnapshotChunk}s.
 */
export const SubscriptionStep = defineMessage(
  "SubscriptionStep",
  z.object({
    changes: Changes.schema.nullable(),
    snapshot: z.object({
      revision,
      entries: z.array(snapshotEntrySchema),
    }).nullable(),
  }),
);

/** A decoded {@link SubscriptionStep}. */
export type SubscriptionStepMessage = z.output<typeof SubscriptionStep.schema>;

/** Member → client when nothing else was sent for a while: the stream is alive. */
export const Heartbeat = defineMessage(
  "Heartbeat",
  z.object({ revision }),
);

/** The learner protocol's message set (its fingerprint is checked at the handshake). */
export const learnerMessages = defineMessageSet([
  Subscribe,
  Subscribed,
  Changes,
  SnapshotChunk,
  Heartbeat,
  SubscribeMany,
  Packed,
]);
/** The learner protocol's message kinds, as a type. */
export type LearnerMessages = readonly [
  typeof Subscribe,
  typeof Subscribed,
  typeof Changes,
  typeof SnapshotChunk,
  typeof Heartbeat,
  typeof SubscribeMany,
  typeof Packed,
];
