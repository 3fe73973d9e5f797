/**
 * A member's learner port: framed TCP (@strata/transport) with the HMAC
 * handshake keyed by the cluster's kv tokens (any role may follow), one
 * prefix subscription per connection by default, streamed from this member's own
 * applied state and watch history — never from the leader, so the leader's
 * work does not grow with the learners attached to followers. A connection
 * may instead carry many subscriptions (`SubscribeMany`): each pump then
 * sends it one `Packed` blob, every subscription's step packed with
 * multi-packet compression.
 *
 * One pump serves every learner: after the member applies entries (batched
 * over `batchDelayMs`) it computes each learner's next step from its
 * position ({@link nextFeedStep}); learners of the same prefix at the same
 * position share the step, encoded once into one frame whose bytes are
 * written to each of them. Pumps are paced by their own cost, so learners
 * never crowd raft out of the member's event loop. A learner whose connection is still busy
 * writing is skipped and catches up from the history later (or from a
 * snapshot, if the history moved on), so a slow learner costs no memory.
 */
import {
  listenTcp,
  MAX_UNPACKED_BYTES,
  pack,
  type PreparedFrame,
  prepareFrame,
  type TcpConnection,
  type TcpServer,
  TransportError,
} from "@strata/transport";
import type { KvStateMachine } from "./kv_state_machine.ts";
import {
  DEFAULT_FEED_LIMITS,
  type FeedLimits,
  type FeedSource,
  type FeedStep,
  nextFeedStep,
} from "./learner_feed.ts";
import {
  Changes,
  Heartbeat,
  type LearnerMessages,
  learnerMessages,
  Packed,
  SnapshotChunk,
  SubscriptionStep,
} from "./learner_messages.ts";
import type { WatchHub } from "./watch_hub.ts";

/**
 * After a pump that took t ms the next waits at least this × t: the
 * learners' share of the member's event loop stays under 1/(1 + ratio).
 */
const PUMP_PAUSE_RATIO = 3;

/** A step shared by the learners at one position, and its frames once encoded. */
interface SharedStep {
  step: FeedStep;
  frames?: PreparedFrame[];
  /** The step as one packet of a {@link Packed} blob. */
  packet?: Uint8Array;
}

/**
 * Packets of one blob stop (until the next pump) past this many bytes, so
 * `pack` stays under its limit whatever the subscriptions need.
 */
const MUX_PUMP_BYTES = MAX_UNPACKED_BYTES / 4;
const EMPTY: Uint8Array = new Uint8Array(0);

/** A multiplexed connection: many subscriptions, one blob per pump. */
interface Mux {
  connection: TcpConnection<LearnerMessages>;
  subscriptions: { prefix: string; next: number }[];
  busy: boolean;
  lastSentAt: number;
}

/** Options of {@link LearnerServer.listen}. */
export interface LearnerServerOptions {
  hostname: string;
  /** 0: a free port. */
  port: number;
  /**
   * The secrets a learner may prove (the cluster's read, write and admin
   * tokens); undefined: no authentication (only with --insecure-no-auth).
   */
  secrets?: readonly string[];
  /** Applied entries are gathered this long before a pump, ms (default 2). */
  batchDelayMs?: number;
  /** A learner sent nothing for this long gets a heartbeat, ms (default 1000). */
  heartbeatMs?: number;
  /**
   * Progress alone (only other keys changed) goes to a learner at most this
   * often, ms (default 20): writes elsewhere cost its learners little.
   */
  progressMs?: number;
  /** Size limits of one step. */
  limits?: FeedLimits;
  /** TLS: the learner port's certificate and key (PEM). */
  tls?: { cert: string; key: string };
}

interface Learner {
  connection: TcpConnection<LearnerMessages>;
  prefix: string;
  /** The next revision it needs (0: a snapshot). */
  next: number;
  busy: boolean;
  lastSentAt: number;
}

/** Counters of what the learner port sent. */
export interface LearnerServerStats {
  /** Learners subscribed now. */
  learners: number;
  /** Bytes written to learners (frames, with headers). */
  bytesSent: number;
  /** Bytes they would have taken without differential encoding. */
  wholeBytes: number;
  /** Changes messages sent (progress reports included). */
  changeMessages: number;
  /** Snapshots sent. */
  snapshots: number;
  /** Multiplexed connections now (each counts its subscriptions in `learners`). */
  muxConnections: number;
  /** Packed blobs sent on multiplexed connections. */
  packedBlobs: number;
  /** Their bytes (blob only, without frame headers). */
  packedBytes: number;
  /** What their packets added up to before packing. */
  unpackedBytes: number;
}

/** See the module comment. */
export class LearnerServer {
  readonly #server: TcpServer<LearnerMessages>;
  readonly #learners = new Map<TcpConnection<LearnerMessages>, Learner>();
  readonly #muxes = new Map<TcpConnection<LearnerMessages>, Mux>();
  readonly #source: FeedSource;
  readonly #batchDelayMs: number;
  readonly #heartbeatMs: number;
  readonly #progressMs: number;
  readonly #limits: FeedLimits;
  readonly #unlisten: () => void;
  readonly #heartbeat: ReturnType<typeof setInterval>;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** performance.now() before which the next pump does not start. */
  #nextPumpAt = 0;
  #progressTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  readonly #stats: Omit<LearnerServerStats, "learners" | "muxConnections"> = {
    bytesSent: 0,
    wholeBytes: 0,
    changeMessages: 0,
    snapshots: 0,
    packedBlobs: 0,
    packedBytes: 0,
    unpackedBytes: 0,
  };

  private constructor(
    store: KvStateMachine,
    watches: WatchHub,
    options: LearnerServerOptions,
  ) {
    this.#source = {
      get revision() {
        return store.appliedIndex;
      },
      eventsSince: (prefix, from) => watches.eventsSince(prefix, from),
      range: (prefix) => store.range(prefix, undefined, Infinity),
    };
    this.#batchDelayMs = options.batchDelayMs ?? 2;
    this.#heartbeatMs = options.heartbeatMs ?? 1000;
    this.#progressMs = options.progressMs ?? 20;
    this.#limits = options.limits ?? DEFAULT_FEED_LIMITS;
    this.#server = listenTcp<LearnerMessages>({
      set: learnerMessages,
      hostname: options.hostname,
      port: options.port,
      secret: options.secrets && [...options.secrets],
      tls: options.tls,
      onFrameSent: (_kind, wire, whole) => {
        this.#stats.bytesSent += wire;
        this.#stats.wholeBytes += whole;
      },
      onConnection: (c) => {
        c.closed.then(() => {
          this.#learners.delete(c);
          this.#muxes.delete(c);
        });
      },
      handlers: {
        onRequest: (req, from) => {
          if (req.type !== "Subscribe" && req.type !== "SubscribeMany") {
            throw new TransportError(
              "protocol_error",
              `a learner sends Subscribe or SubscribeMany, not ${req.type}`,
            );
          }
          const c = from as TcpConnection<LearnerMessages>;
          if (this.#learners.has(c) || this.#muxes.has(c)) {
            throw new TransportError(
              "protocol_error",
              "one Subscribe or SubscribeMany per connection",
            );
          }
          if (req.type === "SubscribeMany") {
            this.#muxes.set(c, {
              connection: c,
              subscriptions: req.message.subscriptions.map((s) => ({
                prefix: s.prefix,
                next: s.from,
              })),
              busy: false,
              lastSentAt: performance.now(),
            });
          } else {
            this.#learners.set(c, {
              connection: c,
              prefix: req.message.prefix,
              next: req.message.from,
              busy: false,
              lastSentAt: performance.now(),
            });
          }
          this.#schedule();
          return {
            type: "Subscribed",
            message: {
              revision: store.appliedIndex,
              oldestRevision: watches.oldestRevision,
            },
          };
        },
      },
    });
    this.#unlisten = watches.addListener(() => this.#schedule());
    this.#heartbeat = setInterval(() => this.#beat(), this.#heartbeatMs);
  }

  /**
   * Binds the learner port and starts serving the member's applied state.
   * @throws Deno errors when the port is taken.
   */
  static listen(
    store: KvStateMachine,
    watches: WatchHub,
    options: LearnerServerOptions,
  ): LearnerServer {
    return new LearnerServer(store, watches, options);
  }

  /** The bound port. */
  get port(): number {
    return this.#server.port;
  }

  /** What it sent so far. */
  stats(): LearnerServerStats {
    let learners = this.#learners.size;
    for (const m of this.#muxes.values()) learners += m.subscriptions.length;
    return { learners, muxConnections: this.#muxes.size, ...this.#stats };
  }

  /** Stops accepting and closes every learner's connection. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#unlisten();
    clearInterval(this.#heartbeat);
    clearTimeout(this.#timer);
    clearTimeout(this.#progressTimer);
    await this.#server.close();
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#closed) return;
    const wait = Math.max(
      this.#batchDelayMs,
      this.#nextPumpAt - performance.now(),
    );
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const start = performance.now();
      this.#pump();
      // The member is a raft voter first: with many learners a pump costs
      // milliseconds, so the next one waits PUMP_PAUSE_RATIO times as long
      // (learners take at most 1/(1+ratio) of the event loop, and the
      // changes applied meanwhile go out together in fewer messages).
      const end = performance.now();
      this.#nextPumpAt = end + (end - start) * PUMP_PAUSE_RATIO;
    }, wait);
  }

  #pump(): void {
    // Learners at the same place of the same prefix get the same step,
    // encoded once: every one of them is written the same frame bytes.
    const shared = new Map<string, SharedStep>();
    const now = performance.now();
    let later = Infinity;
    for (const l of this.#learners.values()) {
      if (l.busy) continue;
      const entry = this.#stepFor(shared, l.prefix, l.next);
      const step = entry.step;
      if (step.kind === "wait") continue;
      const quiet = now - l.lastSentAt;
      if (
        step.kind === "changes" && step.changes.length === 0 &&
        quiet < this.#progressMs
      ) {
        later = Math.min(later, this.#progressMs - quiet);
        continue;
      }
      try {
        entry.frames ??= this.#encode(step);
      } catch {
        // Cannot happen for a valid state (the limits keep frames small);
        // if it does, this learner is dropped rather than the pump stopped.
        l.connection.close();
        continue;
      }
      this.#send(l, step, entry.frames);
    }
    for (const m of this.#muxes.values()) {
      if (m.busy) continue;
      const wait = this.#pumpMux(m, shared, now);
      later = Math.min(later, wait);
    }
    if (
      later < Infinity && !this.#closed && this.#progressTimer === undefined
    ) {
      this.#progressTimer = setTimeout(() => {
        this.#progressTimer = undefined;
        this.#schedule();
      }, later);
    }
  }

  /** The step of learners of `prefix` before revision `next`, computed once per pump. */
  #stepFor(
    shared: Map<string, SharedStep>,
    prefix: string,
    next: number,
  ): SharedStep {
    const id = `${next}\u0000${prefix}`;
    let entry = shared.get(id);
    if (!entry) {
      entry = { step: nextFeedStep(prefix, next, this.#source, this.#limits) };
      shared.set(id, entry);
    }
    return entry;
  }

  /**
   * Sends a multiplexed connection one blob holding every subscription's
   * step (packets of subscriptions at the same place are equal, so the
   * blob stays small however many there are).
   * @returns how long until progress alone may go (Infinity: no need).
   */
  #pumpMux(m: Mux, shared: Map<string, SharedStep>, now: number): number {
    const packets: Uint8Array[] = [];
    const nexts: number[] = [];
    let budget = MUX_PUMP_BYTES;
    let any = false;
    let news = false;
    let snapshots = 0;
    for (const s of m.subscriptions) {
      const entry = this.#stepFor(shared, s.prefix, s.next);
      const step = entry.step;
      let packet: Uint8Array = EMPTY;
      if (step.kind !== "wait") {
        try {
          packet = entry.packet ??= encodeStep(step);
        } catch {
          m.connection.close();
          return Infinity;
        }
        // The rest waits for the next pump (at least one goes each time).
        if (packet.length > budget && any) packet = EMPTY;
      }
      packets.push(packet);
      if (packet.length === 0 || step.kind === "wait") {
        nexts.push(s.next);
        continue;
      }
      any = true;
      budget -= packet.length;
      if (step.kind === "changes") {
        nexts.push(step.to + 1);
        if (step.changes.length > 0) news = true;
      } else {
        nexts.push(step.revision + 1);
        news = true;
        snapshots++;
      }
    }
    if (!any) return Infinity;
    const quiet = now - m.lastSentAt;
    if (!news && quiet < this.#progressMs) return this.#progressMs - quiet;
    let frame: PreparedFrame;
    try {
      const blob = pack(packets);
      frame = prepareFrame(learnerMessages, Packed, { blob });
      this.#stats.packedBytes += blob.length;
    } catch {
      m.connection.close();
      return Infinity;
    }
    for (let i = 0; i < nexts.length; i++) {
      this.#stats.unpackedBytes += packets[i]!.length;
      m.subscriptions[i]!.next = nexts[i]!;
    }
    this.#stats.packedBlobs++;
    this.#stats.snapshots += snapshots;
    m.busy = true;
    m.lastSentAt = performance.now();
    const c = m.connection;
    c.sendPrepared(frame).then(
      () => {
        m.busy = false;
        const revision = this.#source.revision;
        if (m.subscriptions.some((s) => s.next <= revision)) this.#schedule();
      },
      () => c.close(),
    );
    return Infinity;
  }

  /** The frames of one step, encoded once for every learner that takes it. */
  #encode(step: Exclude<FeedStep, { kind: "wait" }>): PreparedFrame[] {
    if (step.kind === "changes") {
      return [
        prepareFrame(learnerMessages, Changes, {
          from: step.from,
          to: step.to,
          changes: step.changes,
        }),
      ];
    }
    return step.chunks.map((entries, i) =>
      prepareFrame(learnerMessages, SnapshotChunk, {
        revision: step.revision,
        entries,
        last: i === step.chunks.length - 1,
      })
    );
  }

  #send(
    l: Learner,
    step: Exclude<FeedStep, { kind: "wait" }>,
    frames: PreparedFrame[],
  ): void {
    l.busy = true;
    l.lastSentAt = performance.now();
    const c = l.connection;
    if (step.kind === "changes") {
      l.next = step.to + 1;
      this.#stats.changeMessages++;
    } else {
      l.next = step.revision + 1;
      this.#stats.snapshots++;
    }
    const sent = frames.length === 1
      ? c.sendPrepared(frames[0]!)
      : Promise.all(frames.map((f) => c.sendPrepared(f))).then(() => {});
    sent.then(
      () => {
        l.busy = false;
        // More was applied while this was queued (or the step was cut short).
        if (l.next <= this.#source.revision) this.#schedule();
      },
      // The connection failed: its `closed` removes the learner.
      () => c.close(),
    );
  }

  #beat(): void {
    const now = performance.now();
    for (const l of this.#learners.values()) {
      if (l.busy || now - l.lastSentAt < this.#heartbeatMs) continue;
      l.lastSentAt = now;
      l.connection.send(Heartbeat, { revision: Math.max(0, l.next - 1) })
        .catch(() => l.connection.close());
    }
    for (const m of this.#muxes.values()) {
      if (m.busy || now - m.lastSentAt < this.#heartbeatMs) continue;
      m.lastSentAt = now;
      m.connection.send(Heartbeat, { revision: this.#source.revision })
        .catch(() => m.connection.close());
    }
  }
}

/** One step as a packet of a {@link Packed} blob. */
function encodeStep(step: Exclude<FeedStep, { kind: "wait" }>): Uint8Array {
  return step.kind === "changes"
    ? SubscriptionStep.encode({
      changes: { from: step.from, to: step.to, changes: step.changes },
      snapshot: null,
    })
    : SubscriptionStep.encode({
      changes: null,
      snapshot: { revision: step.revision, entries: step.chunks.flat() },
    });
}
