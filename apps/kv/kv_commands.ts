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

/** Most sessions one `session_expire` entry names (the leader sends more in turn). */
export const MAX_EXPIRE_IDS = 1000;

/**
 * Every command the replicated KV applies; applying is a pure function of
 * the log, so every replica ends the same sessions at the same index.
 *
 * Times (`now`, ms) are the proposer's wall clock. In `session_open` and
 * `session_keepalive` they only set the session's `expiresAt`, which is
 * reported to clients and decides nothing (since 2026-12-07). `expire
 * {now}` — what leaders wrote before — ends every session whose
 * `expiresAt` is at or before `now`: it still applies so that older logs
 * replay the same, but no leader proposes it any more. The leader decides
 * expiry on its monotonic clock and writes `session_expire` (see
 * session_renewals.ts).
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
  z.object({
    op: z.literal("session_expire"),
    /** Sessions the leader found silent for their TTL (monotonic clock). */
    ids: z.array(nat).max(MAX_EXPIRE_IDS),
    /**
     * The leader's applied index when it decided: a session that an entry
     * after it opened or renewed stays (its keep-alive was acknowledged).
     */
    asOf: nat,
  }),
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
