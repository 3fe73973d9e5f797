import type { MessageSet } from "@strata/codec";
import type { AnyMessageType } from "./message_kinds.ts";
import { RpcSession, type SessionOptions } from "./rpc_session.ts";
import {
  type RandomSource,
  type Scheduler,
  schedulerTimers,
} from "./scheduler.ts";
import type { Handlers, Transport } from "./transport.ts";
import { TransportError } from "./transport_error.ts";

/** Faults of one directed link; probabilities are 0..1. */
export interface LinkFaults {
  /** Shortest delivery delay, ms (default 1). */
  minDelayMs?: number;
  /** Longest delivery delay, ms (default `minDelayMs`). */
  maxDelayMs?: number;
  /** Chance a frame is lost (default 0). */
  loss?: number;
  /** Chance a frame is delivered twice (default 0). */
  duplicate?: number;
  /**
   * Chance a frame ignores first-in-first-out order on its link and may
   * overtake earlier ones (default 0: links are FIFO whatever the delays).
   */
  reorder?: number;
}

/** Options of a {@link MemoryNetwork}. */
export interface MemoryNetworkOptions<T extends readonly AnyMessageType[]> {
  /** The message set every node speaks. */
  set: MessageSet<T>;
  /** Drives delivery and timeouts (packages/sim's scheduler fits). */
  scheduler: Scheduler;
  /** Every fault decision draws from this (a seeded PRNG for replay). */
  random: RandomSource;
  /** Faults of every link unless {@link MemoryNetwork.setFaults} says otherwise. */
  faults?: LinkFaults;
  /** Session limits (call timeout, frame size); differential is forced off. */
  session?: Omit<SessionOptions, "differential">;
}

/** What happened to frames on the network so far. */
export interface NetworkStats {
  /** Frames handed to the network. */
  sent: number;
  /** Frames delivered to a live node (duplicates count twice). */
  delivered: number;
  /** Frames lost to `loss`, partitions or down nodes. */
  dropped: number;
  /** Extra copies created by `duplicate`. */
  duplicated: number;
  /** Bytes handed to the network. */
  bytes: number;
}

/**
 * An in-memory network for deterministic simulation: nodes exchange the
 * same frames as over TCP (encoded, checksummed, validated on receipt), but
 * each frame is a datagram whose fate — delay, loss, duplication,
 * reordering, one-way partitions — is decided by the injected random source
 * and whose delivery is an event on the injected scheduler. The same seed
 * and the same inputs give the same run.
 *
 * Differential encoding is off here: it needs a reliable ordered stream
 * (TCP), and a lost or reordered base would make the next diff wrong.
 * There is no handshake either: every node holds the network's set.
 */
export class MemoryNetwork<T extends readonly AnyMessageType[]> {
  readonly stats: NetworkStats = {
    sent: 0,
    delivered: 0,
    dropped: 0,
    duplicated: 0,
    bytes: 0,
  };
  readonly #o: MemoryNetworkOptions<T>;
  readonly #nodes = new Map<string, MemoryNode<T>>();
  readonly #faults = new Map<string, LinkFaults>();
  readonly #blocked = new Set<string>();
  readonly #lastDelivery = new Map<string, number>();
  readonly #linkBytes = new Map<string, number>();

  /** @param options set, scheduler, random source and default faults. */
  constructor(options: MemoryNetworkOptions<T>) {
    this.#o = options;
  }

  /**
   * Adds a node (or brings a crashed one back with fresh sessions).
   * @throws Error when a live node already has this id.
   */
  addNode(id: string, handlers: Handlers<T> = {}): MemoryNode<T> {
    const existing = this.#nodes.get(id);
    if (existing && !existing.down) throw new Error(`node ${id} exists`);
    const node = new MemoryNode<T>(id, this, handlers);
    this.#nodes.set(id, node);
    return node;
  }

  /** The node with this id, if any. */
  node(id: string): MemoryNode<T> | undefined {
    return this.#nodes.get(id);
  }

  /** Sets the faults of the link `from → to` (one direction). */
  setFaults(from: string, to: string, faults: LinkFaults): void {
    this.#faults.set(linkKey(from, to), faults);
  }

  /** Drops every frame `from → to` until healed; `to → from` is unaffected. */
  partition(from: string, to: string): void {
    this.#blocked.add(linkKey(from, to));
  }

  /** Heals `from → to`, or every partition when called without arguments. */
  heal(from?: string, to?: string): void {
    if (from === undefined || to === undefined) this.#blocked.clear();
    else this.#blocked.delete(linkKey(from, to));
  }

  /** Bytes handed to the network on the link `from → to`. */
  linkBytes(from: string, to: string): number {
    return this.#linkBytes.get(linkKey(from, to)) ?? 0;
  }

  /** @internal Used by the sessions: sends one frame. */
  transmit(from: string, to: string, frame: Uint8Array): void {
    const s = this.stats;
    const key = linkKey(from, to);
    s.sent++;
    s.bytes += frame.length;
    this.#linkBytes.set(key, (this.#linkBytes.get(key) ?? 0) + frame.length);
    const f = this.#faults.get(key) ?? this.#o.faults ?? {};
    const random = this.#o.random;
    // Draws happen in a fixed order whatever the outcome, so one decision
    // never shifts the random stream of the next.
    const lost = random() < (f.loss ?? 0);
    const copies = random() < (f.duplicate ?? 0) ? 2 : 1;
    if (this.#blocked.has(key) || lost) {
      s.dropped++;
      return;
    }
    if (copies === 2) s.duplicated++;
    const scheduler = this.#o.scheduler;
    for (let c = 0; c < copies; c++) {
      const min = f.minDelayMs ?? 1;
      const max = Math.max(min, f.maxDelayMs ?? min);
      let at = scheduler.now() + min + (max - min) * random();
      const free = random() < (f.reorder ?? 0);
      if (!free) {
        at = Math.max(at, this.#lastDelivery.get(key) ?? 0);
        this.#lastDelivery.set(key, at);
      }
      scheduler.schedule(at, () => {
        const node = this.#nodes.get(to);
        if (!node || node.down) {
          s.dropped++;
          return;
        }
        s.delivered++;
        node.deliver(from, frame);
      });
    }
  }

  /** @internal The options sessions are built from. */
  get options(): MemoryNetworkOptions<T> {
    return this.#o;
  }
}

function linkKey(from: string, to: string): string {
  return `${from}\u0000${to}`;
}

/** One node of a {@link MemoryNetwork}. */
export class MemoryNode<T extends readonly AnyMessageType[]> {
  readonly id: string;
  readonly #network: MemoryNetwork<T>;
  readonly #handlers: Handlers<T>;
  readonly #sessions = new Map<string, RpcSession<T>>();
  #down = false;

  /** Prefer {@link MemoryNetwork.addNode}. */
  constructor(id: string, network: MemoryNetwork<T>, handlers: Handlers<T>) {
    this.id = id;
    this.#network = network;
    this.#handlers = handlers;
  }

  /** True after {@link crash}. */
  get down(): boolean {
    return this.#down;
  }

  /**
   * The link from this node to `peer` (one per pair, shared by calls in
   * both directions). Frames to a missing or crashed peer are dropped, so
   * calls to it time out, as over a real network.
   * @throws TransportError `closed` when this node is down.
   */
  connect(peer: string): Transport<T> {
    return this.#session(peer);
  }

  /**
   * Crashes the node: it stops receiving, and its own calls in flight fail
   * with `connection_lost`. Re-add it with {@link MemoryNetwork.addNode}.
   */
  crash(): void {
    this.#down = true;
    for (const s of this.#sessions.values()) {
      s.fail(new TransportError("connection_lost", `${this.id} crashed`));
    }
    this.#sessions.clear();
  }

  /** @internal A frame from `from` arrived. */
  deliver(from: string, frame: Uint8Array): void {
    this.#session(from).receive(frame);
  }

  #session(peer: string): RpcSession<T> {
    if (this.#down) {
      throw new TransportError("closed", `node ${this.id} is down`);
    }
    let s = this.#sessions.get(peer);
    if (s && !s.failure) return s;
    const net = this.#network;
    const o = net.options;
    const session: RpcSession<T> = new RpcSession<T>({
      set: o.set,
      peer,
      timers: schedulerTimers(o.scheduler),
      handlers: this.#handlers,
      options: { ...o.session, differential: false },
      link: {
        write: (build) => {
          try {
            const frame = build();
            if (!this.#down) net.transmit(this.id, peer, frame);
            return Promise.resolve();
          } catch (e) {
            return Promise.reject(e);
          }
        },
        close: () => {
          if (this.#sessions.get(peer) === session) {
            this.#sessions.delete(peer);
          }
        },
      },
    });
    s = session;
    this.#sessions.set(peer, s);
    s.start();
    return s;
  }
}
