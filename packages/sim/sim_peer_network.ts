/**
 * The simulated network between `ReplicatedNode`s (their `PeerTransport`
 * port). Every message goes through the production wire path: the raft
 * message set's codec and, on stream links, transport's differential
 * encoding (encode → bytes → decode on the other side, with per-connection
 * encoder and decoder state), so a codec bug breaks the simulation.
 *
 * Two link models, chosen per seed:
 * - `stream` (what TCP gives): per-link FIFO, differential encoding on; a
 *   fault resets the connection: the frames in flight are lost and both
 *   sides start a fresh differential state.
 * - `datagram`: whole frames (no differential encoding), each with its
 *   own delay, so they reorder; frames are lost and duplicated at random
 *   (forwarded proposals excepted, see below).
 *
 * Partitions (one-way cuts) drop frames at send and at delivery. A frame to
 * a stopped process waits for it (the socket buffer); one to a dead process
 * is lost.
 */
import type { MessageType } from "@strata/codec";
import { type Message, raftMessageTypes } from "@strata/raft";
import type { ZodType } from "zod";
import type { PeerTransport } from "@strata/replication";
import { DifferentialDecoder, DifferentialEncoder } from "@strata/transport";
import type { Prng } from "./prng.ts";
import type { Scheduler } from "./scheduler.ts";
import { SimError } from "./sim_error.ts";
import type { SimProcess } from "./sim_process.ts";

/** Faults of the network, fixed per seed. */
export interface SimLinkFaults {
  /** Link model (see the module doc). */
  mode: "stream" | "datagram";
  /** Delay bounds, virtual ms. */
  minDelayMs: number;
  maxDelayMs: number;
  /** Chance a frame is lost (stream: the connection resets). */
  loss: number;
  /** Chance a frame is delivered twice (datagram only). */
  duplicate: number;
  /**
   * Chance a frame is held back for up to {@link longDelayMs} (datagram
   * only; the MIT lab's long reordering). Absent or 0: no draw is made, so
   * seeds that never set it run as before it existed.
   */
  longDelay?: number;
  /** Upper bound of a long delay, virtual ms. */
  longDelayMs?: number;
}

interface Link {
  epoch: number;
  enc: DifferentialEncoder;
  dec: DifferentialDecoder;
  /** Stream FIFO: no frame is delivered before this time. */
  lastAt: number;
}

/** Counters of what the network did. */
export interface SimNetStats {
  sent: number;
  delivered: number;
  dropped: number;
  resets: number;
  bytes: number;
  differential: number;
}

const typeIds = new Map(
  raftMessageTypes.map((t, i) => [t.name.slice("raft.".length), i]),
);

/** The network. */
export class SimPeerNetwork {
  readonly stats: SimNetStats = {
    sent: 0,
    delivered: 0,
    dropped: 0,
    resets: 0,
    bytes: 0,
    differential: 0,
  };
  readonly #links = new Map<string, Link>();
  readonly #cut = new Set<string>();
  readonly #deliver = new Map<number, (m: Message) => void>();
  readonly #announced = new Map<
    number,
    (id: number, address: string) => void
  >();
  readonly #byAddress = new Map<string, number>();

  /**
   * @param sched the simulation's scheduler.
   * @param prng decides every delay and fault.
   * @param procs the processes by node id.
   * @param faults the link model and fault rates.
   */
  constructor(
    readonly sched: Scheduler,
    readonly prng: Prng,
    readonly procs: ReadonlyMap<number, SimProcess>,
    readonly faults: SimLinkFaults,
  ) {}

  /** The raft address of node `id`. */
  static address(id: number): string {
    return `sim-${id}:${7000 + id}`;
  }

  /** Cuts `from → to` (one way). */
  cut(from: number, to: number): void {
    this.#cut.add(`${from}>${to}`);
  }

  /** Removes the cut `from → to`. */
  uncut(from: number, to: number): void {
    this.#cut.delete(`${from}>${to}`);
  }

  /** Removes every cut. */
  heal(): void {
    this.#cut.clear();
  }

  /** True when `from → to` is cut. */
  isCut(from: number, to: number): boolean {
    return this.#cut.has(`${from}>${to}`);
  }

  /** Resets every connection of `id` (it crashed or restarted). */
  resetNode(id: number): void {
    for (const [key, link] of this.#links) {
      const [a, b] = key.split(">").map(Number);
      if (a === id || b === id) this.#reset(link);
    }
  }

  #reset(link: Link): void {
    link.epoch++;
    link.enc = new DifferentialEncoder();
    link.dec = new DifferentialDecoder();
    this.stats.resets++;
  }

  #link(from: number, to: number): Link {
    const key = `${from}>${to}`;
    let l = this.#links.get(key);
    if (!l) {
      l = {
        epoch: 0,
        enc: new DifferentialEncoder(),
        dec: new DifferentialDecoder(),
        lastAt: 0,
      };
      this.#links.set(key, l);
    }
    return l;
  }

  /** The transport port of node `id` for the current life of its process. */
  endpoint(id: number): PeerTransport {
    const proc = this.procs.get(id)!;
    const gen = proc.generation;
    this.#byAddress.set(SimPeerNetwork.address(id), id);
    return {
      port: 7000 + id,
      listen: (deliver, _addressOf, announced) => {
        this.#deliver.set(id, deliver);
        if (announced) this.#announced.set(id, announced);
        return Promise.resolve();
      },
      send: (m, address) => {
        const to = this.#byAddress.get(address);
        if (to === undefined || gen !== proc.generation) return false;
        this.#send(id, to, m);
        return true;
      },
      close: () => Promise.resolve(),
    };
  }

  #send(from: number, to: number, m: Message): void {
    this.stats.sent++;
    const f = this.faults;
    if (this.isCut(from, to)) {
      this.stats.dropped++;
      return;
    }
    const link = this.#link(from, to);
    const typeId = typeIds.get(m.type)!;
    // One of the set's types; the codec calls are generic over any of them.
    const type = raftMessageTypes[typeId] as unknown as MessageType<
      string,
      ZodType
    >;
    const stream = f.mode === "stream";
    let bytes: Uint8Array;
    let differential = false;
    if (stream) {
      const body = link.enc.encode(typeId, type, m);
      body.commit();
      bytes = body.bytes;
      differential = body.differential;
      if (differential) this.stats.differential++;
    } else {
      bytes = type.encode(m);
    }
    this.stats.bytes += bytes.length;
    if (this.prng.chance(f.loss)) {
      this.stats.dropped++;
      if (stream) this.#reset(link);
      return;
    }
    const delay = f.minDelayMs +
      this.prng.float() * (f.maxDelayMs - f.minDelayMs);
    let at = this.sched.now + delay;
    if (!stream && (f.longDelay ?? 0) > 0 && this.prng.chance(f.longDelay!)) {
      at += this.prng.float() * (f.longDelayMs ?? 0);
    }
    if (stream) {
      at = Math.max(at, link.lastAt);
      link.lastAt = at;
    }
    // Raft tolerates duplicated protocol messages, but a forwarded proposal
    // delivered twice is appended twice and its command runs twice:
    // ReplicatedNode forwards proposals at most once and counts on the TCP
    // stream never duplicating a frame, so `prop` is never duplicated here.
    const copies = !stream && m.type !== "prop" && this.prng.chance(f.duplicate)
      ? 2
      : 1;
    const epoch = link.epoch;
    for (let c = 0; c < copies; c++) {
      const when = c === 0 ? at : at + this.prng.float() * f.maxDelayMs;
      this.sched.at(when, () => {
        if (stream && link.epoch !== epoch) {
          this.stats.dropped++;
          return;
        }
        const proc = this.procs.get(to)!;
        if (this.isCut(from, to) || !proc.up) {
          // A stream cannot skip a frame: the connection breaks.
          this.stats.dropped++;
          if (stream) this.#reset(link);
          return;
        }
        // Decoded on arrival, in order: the receiver's socket has the bytes
        // even while its process is stopped.
        let decoded: Message;
        try {
          decoded = stream
            ? link.dec.decode(typeId, type, bytes, differential) as Message
            : type.decode(bytes) as Message;
        } catch (e) {
          throw new SimError(
            "invariant",
            `wire codec: a ${m.type} from ${from} to ${to} did not decode: ${
              e instanceof Error ? e.message : e
            }`,
          );
        }
        const gen = proc.generation;
        proc.run(() => {
          if (gen !== proc.generation) return;
          this.stats.delivered++;
          // The sender's announcement (TCP sends it first on each
          // connection it dials) travels with every frame here.
          this.#announced.get(to)?.(from, SimPeerNetwork.address(from));
          this.#deliver.get(to)?.(decoded);
        });
      });
    }
  }
}
