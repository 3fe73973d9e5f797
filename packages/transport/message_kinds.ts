import type { DecodedMessage, MessageType } from "@strata/codec";
import type { z } from "zod";

/** Any message kind, whatever its schema (the codec's own constraint). */
// deno-lint-ignore no-explicit-any
export type AnyMessageType = MessageType<string, any>;

/** The message value a kind carries: `MessageOf<typeof Ping>` is `{ seq: number }`. */
export type MessageOf<M> = M extends MessageType<string, infer S> ? z.output<S>
  : never;

/**
 * A whole message with its kind's name, as handlers receive them and as
 * request handlers reply: `{ type: "Pong", message: { seq: 1 } }`.
 */
export type Envelope<T extends readonly AnyMessageType[]> = DecodedMessage<T>;
