import { defineMessage } from "@strata/codec";
import { z } from "zod";

/** Bytes (any Uint8Array; zod's instanceof would narrow to ArrayBuffer-backed). */
export const bytesSchema = z.custom<Uint8Array>(
  (v) => v instanceof Uint8Array,
  "expected bytes",
);
const bytes = bytesSchema;
const key = z.string();
const nat = z.number().int().nonnegative();

/** A condition of a transaction, or of a compare-and-swap. */
export const compareSchema = z.object({
  key,
  /** What of the key is compared. */
  target: z.enum([
    "value",
    "modRevision",
    "createRevision",
    "version",
    "exists",
  ]),
  op: z.enum(["==", "!=", "<", ">"]),
  /** Bytes for `value`; a number for revisions and version; 0/1 for exists. */
  value: z.union([bytes, nat]),
});
/** A condition of a transaction. */
export type Compare = z.infer<typeof compareSchema>;

/** An operation inside a transaction branch. */
export const txnOpSchema = z.discriminatedUnion("op", [
  z.object({ op: z.literal("put"), key, value: bytes }),
  z.object({ op: z.literal("delete"), key }),
  z.object({ op: z.literal("get"), key }),
]);
/** An operation inside a transaction branch. */
export type TxnOp = z.infer<typeof txnOpSchema>;

/**
 * Every command the replicated KV applies. Times (`now`, ms) come from the
 * proposer's clock and are written into the log, so applying stays a pure
 * function of the log: every replica expires the same sessions at the same
 * index.
 */
export const kvCommandSchema = z.discriminatedUnion("op", [
  z.object({
    op: z.literal("put"),
    key,
    value: bytes,
    /** Binds the key to a session: it vanishes when the session ends. */
    session: nat.optional(),
  }),
  z.object({ op: z.literal("delete"), key }),
  z.object({
    op: z.literal("cas"),
    key,
    /** Swap only if the current value equals this (null: key absent). */
    expectValue: bytes.nullable().optional(),
    /** Swap only if the key's modRevision equals this (0: key absent). */
    expectRevision: nat.optional(),
    /** The new value; null deletes. */
    value: bytes.nullable(),
  }),
  z.object({
    op: z.literal("txn"),
    compare: z.array(compareSchema).max(64),
    success: z.array(txnOpSchema).max(128),
    failure: z.array(txnOpSchema).max(128),
  }),
  z.object({ op: z.literal("session_open"), ttlMs: nat, now: nat }),
  z.object({ op: z.literal("session_keepalive"), id: nat, now: nat }),
  z.object({ op: z.literal("session_close"), id: nat }),
  z.object({ op: z.literal("expire"), now: nat }),
  z.object({ op: z.literal("lock"), name: key, session: nat }),
  z.object({ op: z.literal("unlock"), name: key, session: nat }),
]);
/** Every command the replicated KV applies. */
export type KvCommand = z.infer<typeof kvCommandSchema>;

/**
 * The command as a log entry carries it (positional CBOR); the replicated
 * log wraps it with the proposer's request id.
 */
export const KvCommandMessage = defineMessage("KvCommand", kvCommandSchema);
