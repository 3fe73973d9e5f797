/**
 * `rooms_wire.ts`: the internal batch servers send each other (peer
 * secret only) and the public JSON of the rooms routes. Message bodies
 * travel as base64 between servers.
 */
import { z } from "zod";
import { roomNameSchema } from "./room_key.ts";

/** The largest message body, bytes. */
export const MAX_MESSAGE_BYTES = 64 * 1024;
/** The largest internal batch body, bytes. */
export const MAX_BATCH_BYTES = 16 << 20;

const b64data = z.string().max(Math.ceil(MAX_MESSAGE_BYTES / 3) * 4 + 4);

/** One thing a server asks of another. */
export const batchItemSchema = z.discriminatedUnion("op", [
  /** I have subscribers in `room` (to its home). */
  z.strictObject({ op: z.literal("join"), room: roomNameSchema }),
  /** I have no subscriber left in `room` (to its home). */
  z.strictObject({ op: z.literal("leave"), room: roomNameSchema }),
  /** Number `data` and send it to the room's servers (to its home). */
  z.strictObject({ op: z.literal("pub"), room: roomNameSchema, data: b64data }),
  /** I have announced every room of `tablet` I listen to (to its home). */
  z.strictObject({ op: z.literal("sync"), tablet: z.string().min(1).max(128) }),
  /** I have (or no longer have) pattern subscriptions (to every server). */
  z.strictObject({ op: z.literal("patterns"), on: z.boolean() }),
  /** A numbered message of `room` for your subscribers (from its home). */
  z.strictObject({
    op: z.literal("deliver"),
    room: roomNameSchema,
    epoch: z.number().int().min(0),
    seq: z.number().int().min(0),
    data: b64data,
  }),
]);
/** One internal request item. */
export type BatchItem = z.infer<typeof batchItemSchema>;

/** The internal batch: who sends (id, kv session, URL) and what, in order. */
export const batchSchema = z.strictObject({
  from: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
  session: z.number().int().positive(),
  url: z.url(),
  items: z.array(batchItemSchema).min(1).max(10_000),
});
/** An internal batch. */
export type Batch = z.infer<typeof batchSchema>;

/** The answer to one item. */
export const itemResultSchema = z.union([
  z.strictObject({
    ok: z.literal(true),
    /** join: where the room's numbering starts; pub: the message's number. */
    epoch: z.number().optional(),
    seq: z.number().optional(),
    /** pub: servers it was sent to. */
    servers: z.number().optional(),
    /** pub, deliver: subscribers it reached (pub: those that answered within 1 s). */
    delivered: z.number().optional(),
  }),
  z.strictObject({
    error: z.strictObject({ code: z.string(), message: z.string() }),
  }),
]);
/** The answer to one item. */
export type ItemResult = z.infer<typeof itemResultSchema>;

/** The answer to a batch, item by item. */
export const batchResultSchema = z.strictObject({
  results: z.array(itemResultSchema),
});

/** `POST /v1/rooms/:room/messages`. */
export const publishBody = z.strictObject({
  data: z.string(),
  encoding: z.enum(["utf8", "base64"]).default("utf8"),
});
