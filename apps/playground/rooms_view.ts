/**
 * The rooms panel's model (pure): the subscribers the playground holds
 * (each an event stream on one tablet server), the messages it published
 * and which subscriber got each one when. From that: per room, the
 * servers with a live subscriber (the bitmap the room's home keeps: a bit
 * per server id), what the home said about each publish (sent to how many
 * servers, delivered to how many subscribers), and the publish-to-deliver
 * time of each delivery. Times are the caller's monotonic clock, ms.
 */

/** A subscriber's stream state. */
export type SubscriberState = "subscribing" | "subscribed" | "ended";

/** One subscriber as the page shows it. */
export interface SubscriberView {
  id: number;
  room: string;
  /** The tablet server its stream is open on. */
  server: string;
  state: SubscriberState;
  /** Why the stream ended (null while open). */
  reason: string | null;
  /** Messages it got. */
  received: number;
  /** Publish-to-deliver time of its last message, ms. */
  lastLatencyMs: number | null;
}

/** What the room's home answered to a publish. */
export interface PublishAnswer {
  /** The message's number in its room. */
  seq: number;
  /** Servers the home sent it to (the servers of its bitmap). */
  servers: number;
  /** Subscribers that had it within 1 s, on every server. */
  delivered: number;
}

/** One message the playground published, as the page shows it. */
export interface PublishView {
  /** The playground's number for it (the message text starts with `#n `). */
  n: number;
  room: string;
  data: string;
  /** The server it was posted to. */
  via: string;
  answer: PublishAnswer;
  /** The subscribers of its room that were subscribed when it was posted. */
  expected: number;
  /** Those of them that got it, and how long after the post, ms. */
  deliveries: Array<{ subscriber: number; server: string; ms: number }>;
}

/** One room. */
export interface RoomView {
  room: string;
  /** Every tablet server, in id order, and whether it holds a live subscriber of the room. */
  bitmap: Array<{ server: string; bit: 0 | 1 }>;
  subscribers: SubscriberView[];
  /** Newest last. */
  publishes: PublishView[];
}

/** The panel. */
export interface RoomsView {
  rooms: RoomView[];
  /** Publish-to-deliver times of every delivery seen, ms (null: none yet). */
  latency: { count: number; p50: number; max: number } | null;
}

/** Limits of a {@link RoomsBoard}. */
export interface RoomsLimits {
  /** Subscribers held at once (default 12). */
  subscribers: number;
  /** Publishes kept per room (default 10). */
  publishesPerRoom: number;
}

interface Sub {
  id: number;
  room: string;
  server: string;
  state: SubscriberState;
  reason: string | null;
  received: number;
  lastLatencyMs: number | null;
}

interface Pub {
  n: number;
  room: string;
  data: string;
  via: string;
  atMs: number;
  answer: PublishAnswer | null;
  subscribers: Set<number>;
  deliveries: Array<{ subscriber: number; server: string; ms: number }>;
}

/** The text a message carries: the playground's number, then the data. */
export const messageText = (n: number, data: string): string => `#${n} ${data}`;

const MESSAGE_NUMBER = /^#(\d+) /;

/** The state behind the rooms panel (see the module doc). */
export class RoomsBoard {
  readonly #limits: RoomsLimits;
  readonly #subs = new Map<number, Sub>();
  readonly #pubs = new Map<number, Pub>();
  #nextSub = 1;
  #nextPub = 1;
  readonly #latencies: number[] = [];

  constructor(limits: Partial<RoomsLimits> = {}) {
    this.#limits = { subscribers: 12, publishesPerRoom: 10, ...limits };
  }

  /** Subscribers that have not ended. */
  get open(): number {
    return [...this.#subs.values()].filter((s) => s.state !== "ended").length;
  }

  /** Whether another subscriber may be added. */
  get full(): boolean {
    return this.open >= this.#limits.subscribers;
  }

  /** Records a new subscriber (its stream being opened); returns its id. */
  addSubscriber(room: string, server: string): number {
    const id = this.#nextSub++;
    this.#subs.set(id, {
      id,
      room,
      server,
      state: "subscribing",
      reason: null,
      received: 0,
      lastLatencyMs: null,
    });
    // Ended subscribers beyond the limit are forgotten, oldest first.
    const ended = [...this.#subs.values()].filter((s) => s.state === "ended");
    const keep = this.#limits.subscribers;
    for (const s of ended.slice(0, Math.max(0, ended.length - keep))) {
      this.#subs.delete(s.id);
    }
    return id;
  }

  /** The server confirmed the subscription. */
  subscribed(id: number): void {
    const s = this.#subs.get(id);
    if (s && s.state === "subscribing") s.state = "subscribed";
  }

  /** The stream ended (refused, the server went away, or closed). */
  ended(id: number, reason: string): void {
    const s = this.#subs.get(id);
    if (s && s.state !== "ended") {
      s.state = "ended";
      s.reason = reason;
    }
  }

  /**
   * A publish is about to be posted at `atMs`: returns its number (the
   * message text is {@link messageText}). Subscribers of the room that
   * are subscribed now are the ones expected to get it.
   */
  publishing(room: string, data: string, via: string, atMs: number): number {
    const n = this.#nextPub++;
    const subscribers = new Set(
      [...this.#subs.values()].filter((s) =>
        s.room === room && s.state === "subscribed"
      ).map((s) => s.id),
    );
    this.#pubs.set(n, {
      n,
      room,
      data,
      via,
      atMs,
      answer: null,
      subscribers,
      deliveries: [],
    });
    const ofRoom = [...this.#pubs.values()].filter((p) => p.room === room);
    for (
      const p of ofRoom.slice(
        0,
        Math.max(0, ofRoom.length - this.#limits.publishesPerRoom),
      )
    ) this.#pubs.delete(p.n);
    return n;
  }

  /** The home's answer to publish `n`. */
  published(n: number, answer: PublishAnswer): void {
    const p = this.#pubs.get(n);
    if (p) p.answer = answer;
  }

  /** The post of publish `n` failed: it is forgotten. */
  failed(n: number): void {
    this.#pubs.delete(n);
  }

  /** Subscriber `id` got a message with this text at `atMs`. */
  delivered(id: number, text: string, atMs: number): void {
    const s = this.#subs.get(id);
    if (!s) return;
    s.received++;
    const m = text.match(MESSAGE_NUMBER);
    const p = m ? this.#pubs.get(Number(m[1])) : undefined;
    if (!p || p.room !== s.room) return;
    const ms = Math.max(0, atMs - p.atMs);
    s.lastLatencyMs = ms;
    p.deliveries.push({ subscriber: id, server: s.server, ms });
    this.#latencies.push(ms);
    if (this.#latencies.length > 1000) this.#latencies.shift();
  }

  /** The panel, with `servers` (every tablet server id) as the bitmap's positions. */
  view(servers: readonly string[]): RoomsView {
    const order = [...servers].sort();
    const names = [
      ...new Set([
        ...[...this.#subs.values()].map((s) => s.room),
        ...[...this.#pubs.values()].map((p) => p.room),
      ]),
    ].sort();
    const rooms = names.map((room): RoomView => {
      const subs = [...this.#subs.values()].filter((s) => s.room === room);
      const live = new Set(
        subs.filter((s) => s.state === "subscribed").map((s) => s.server),
      );
      return {
        room,
        bitmap: order.map((server) => ({
          server,
          bit: live.has(server) ? 1 : 0,
        })),
        subscribers: subs.map((s) => ({ ...s })),
        publishes: [...this.#pubs.values()].filter((p) =>
          p.room === room && p.answer !== null
        ).map((p) => ({
          n: p.n,
          room,
          data: p.data,
          via: p.via,
          answer: p.answer!,
          expected: p.subscribers.size,
          deliveries: p.deliveries.filter((d) =>
            p.subscribers.has(d.subscriber)
          )
            .map((d) => ({ ...d })),
        })),
      };
    });
    const sorted = [...this.#latencies].sort((a, b) => a - b);
    return {
      rooms,
      latency: sorted.length === 0 ? null : {
        count: sorted.length,
        p50: sorted[Math.floor((sorted.length - 1) / 2)]!,
        max: sorted.at(-1)!,
      },
    };
  }
}
