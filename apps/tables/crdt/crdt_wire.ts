/**
 * `crdt_wire.ts`: what CRDT ranges look like in kv and on the wire (zod).
 *
 * - kv `tables/crdt/<range>`: the range's declaration
 *   ({@link CrdtRangeRecord}: its replicas' server ids, the home first),
 *   written by the active master's fenced transactions.
 * - `POST /v1/crdt/:range/update` (a replica, write role):
 *   `{"key","op":"incr","by"}`, `{"key","op":"add"|"remove","elements"}`,
 *   `{"key","op":"set","value"}`.
 * - `POST /v1/crdt/_sync` (peer secret): another replica's key states.
 */
import { z } from "zod";
import {
  CRDT_LIMITS,
  crdtKeySchema,
  crdtOpSchema,
  crdtValueSchema,
} from "./crdt_value.ts";

/** kv prefix of CRDT range declarations. */
export const CRDT_PREFIX = "tables/crdt/";
/** The kv key of a range's declaration. */
export const crdtRangeKey = (range: string): string => CRDT_PREFIX + range;

/** A range name: also a directory name on the replicas. */
export const crdtRangeNameSchema = z.string().regex(
  /^[A-Za-z][A-Za-z0-9_-]{0,63}$/,
  "a CRDT range name starts with a letter and has at most 64 letters, digits, '_', '-'",
);

/** Most replicas a range may have. */
export const MAX_CRDT_REPLICAS = 7;

/** A range's declaration in kv. */
export const crdtRangeRecordSchema = z.strictObject({
  name: crdtRangeNameSchema,
  /** Server ids holding a replica; the first is the range's home. */
  replicas: z.array(z.string().min(1).max(64)).min(1).max(MAX_CRDT_REPLICAS),
  /**
   * Which declaration of that name (a range dropped and declared again is
   * a new one: replicas drop what they held of the old one).
   */
  incarnation: z.string().min(1).max(64),
});
/** A range's declaration. */
export type CrdtRangeRecord = z.infer<typeof crdtRangeRecordSchema>;

/** `POST /v1/crdt` at the master. */
export const createCrdtRangeBody = z.strictObject({
  name: crdtRangeNameSchema,
  /** How many servers hold a replica (default 3). */
  replicas: z.number().int().min(1).max(MAX_CRDT_REPLICAS).default(3),
});

const op = crdtOpSchema.options;
/** `POST /v1/crdt/:range/update`: one operation on one key. */
export const crdtUpdateBody = z.discriminatedUnion("op", [
  op[0].extend({ key: crdtKeySchema }),
  op[1].extend({ key: crdtKeySchema }),
  op[2].extend({ key: crdtKeySchema }),
]);

/** Key states one sync request carries at most. */
export const SYNC_BATCH_KEYS = 500;
/** Largest sync request body. */
export const MAX_SYNC_BYTES = 32 << 20;

/** `POST /v1/crdt/_sync`: key states of one range from one replica. */
export const crdtSyncBody = z.strictObject({
  from: z.string().min(1).max(64),
  range: crdtRangeNameSchema,
  incarnation: z.string().min(1).max(64),
  entries: z.array(z.strictObject({
    key: crdtKeySchema,
    value: crdtValueSchema,
  })).max(SYNC_BATCH_KEYS),
});

/** `GET /v1/crdt/:range/scan` query. */
export const crdtScanQuery = z.strictObject({
  prefix: z.string().max(CRDT_LIMITS.maxKeyBytes).default(""),
  /** Keys after this one (the last key of the previous page). */
  after: z.string().max(CRDT_LIMITS.maxKeyBytes).optional(),
  limit: z.coerce.number().int().min(1).max(10_000).default(1000),
});
