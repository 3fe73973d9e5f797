/**
 * `pubsub_port.ts`: what a protocol front end (RESP `PUBLISH`/`SUBSCRIBE`,
 * HTTP SSE) needs from the pub/sub rooms, so that the front ends and the
 * cross-server room fan-out are written and tested apart.
 *
 * Semantics follow Redis pub/sub: fire-and-forget, no persistence; a
 * subscriber receives the messages of a channel published while it was
 * subscribed, in publish order per channel.
 */

/** Called for each message on a channel subscribed with `subscribe`. */
export type ChannelListener = (channel: string, message: Uint8Array) => void;

/** Called for each message on a channel matching a `psubscribe` pattern. */
export type PatternListener = (
  pattern: string,
  channel: string,
  message: Uint8Array,
) => void;

/**
 * Unsubscribes when called; `ready`, when given, resolves once messages
 * published from then on reach the listener (the room's home counts this
 * server in), so a front end can confirm the subscription only then.
 */
export type Unsubscribe = (() => void) & { ready?: Promise<void> };

/** The pub/sub service one tablet server offers its front ends. */
export interface PubSubPort {
  /**
   * Publishes `message` on `channel`; resolves to the number of
   * subscribers it was delivered to (Redis' `PUBLISH` reply; an
   * implementation states whether that counts all servers or this one).
   */
  publish(channel: string, message: Uint8Array): Promise<number>;
  /** Subscribes `listener` to `channel`; the returned function unsubscribes. */
  subscribe(channel: string, listener: ChannelListener): Unsubscribe;
  /** Subscribes `listener` to channels matching a Redis glob `pattern`. */
  psubscribe(pattern: string, listener: PatternListener): Unsubscribe;
}
