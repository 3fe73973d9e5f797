/**
 * `KvClient.followMany`: many followed prefixes (or many copies of one)
 * over ONE learner connection to a member. The member answers each of its
 * pumps with one {@link Packed} blob — multi-packet compression of every
 * subscription's step, so subscriptions at the same place cost it one
 * packet's bytes however many there are — and this side unpacks it and
 * feeds each replica its own packet. On a member failure the whole group
 * moves to another member, each replica resuming from its own revision.
 */
import {
  backoffDelay,
  connectTcp,
  isTransportError,
  type TcpConnection,
  unpack,
} from "@strata/transport";
import type { Envelope } from "@strata/transport";
import { isCodecError } from "@strata/codec";
import { KvClientError } from "./client.ts";
import { FollowedReplica } from "./followed_replica.ts";
import type { FollowerParts } from "./follower.ts";
import {
  type LearnerMessages,
  learnerMessages,
  SubscribeMany,
  SubscriptionStep,
  type SubscriptionStepMessage,
} from "./learner_messages.ts";
import { LearnerStreamError, type ReplicaUpdate } from "./learner_replica.ts";

/** One subscription of {@link KvClient.followMany}. */
export interface GroupSubscription {
  prefix: string;
  /** As `FollowOptions.from`: omitted, a snapshot first. */
  from?: number;
  /** Told about every update applied to this replica, in order. */
  onUpdate?(update: ReplicaUpdate): void;
}

/** One replica of a {@link FollowGroup}: read it like a `Follower`. */
export class GroupReplica extends FollowedReplica {
  /** Applies one packet's step; @returns whether the replica moved. */
  apply(step: SubscriptionStepMessage): boolean {
    let update: ReplicaUpdate | undefined;
    if (step.changes) {
      const { from, to, changes } = step.changes;
      update = this.replica.applyChanges(from, to, changes);
    } else if (step.snapshot) {
      const { revision, entries } = step.snapshot;
      update = this.replica.applySnapshotChunk(revision, entries, true);
    }
    if (!update) return false;
    this.applied(update);
    return true;
  }

  /** The `from` to subscribe with now. */
  get resumeFrom(): number {
    return this.replica.resumeFrom;
  }

  /** True once it holds a state to read. */
  get based(): boolean {
    return this.replica.based;
  }

  /** Called by the group when it closes. */
  close(): void {
    this.closeWaiters();
  }
}

/** See the module comment. Create with `KvClient.followMany`. */
export class FollowGroup {
  /** The replicas, in the order of the subscriptions given. */
  readonly replicas: readonly GroupReplica[];
  readonly #parts: FollowerParts;
  readonly #idleTimeoutMs: number;
  #members: string[] = [];
  #memberIndex = 0;
  #connection: TcpConnection<LearnerMessages> | undefined;
  #current: string | undefined;
  #lastHeard = performance.now();
  #closed = false;
  #reconnects = 0;
  #lastError: unknown;
  #ready!: () => void;
  #failed!: (e: Error) => void;
  readonly #readyPromise: Promise<void>;
  readonly #loop: Promise<void>;
  readonly #idleTimer: ReturnType<typeof setInterval>;

  private constructor(
    subscriptions: readonly GroupSubscription[],
    parts: FollowerParts,
  ) {
    this.replicas = subscriptions.map((s) =>
      new GroupReplica(s.prefix, s.from, s.onUpdate)
    );
    this.#parts = parts;
    this.#idleTimeoutMs = parts.idleTimeoutMs ?? 5000;
    this.#readyPromise = new Promise((resolve, reject) => {
      this.#ready = resolve;
      this.#failed = reject;
    });
    this.#readyPromise.catch(() => {});
    this.#idleTimer = setInterval(() => {
      if (performance.now() - this.#lastHeard > this.#idleTimeoutMs) {
        this.#connection?.close();
      }
    }, Math.max(50, this.#idleTimeoutMs / 4));
    this.#loop = this.#run();
  }

  /**
   * Starts following and resolves once every replica holds a state.
   * @throws KvClientError `unreachable` when no member served them within
   *   `startTimeoutMs`; `unauthorized` when a member refused the token.
   */
  static async start(
    subscriptions: readonly GroupSubscription[],
    parts: FollowerParts,
  ): Promise<FollowGroup> {
    const g = new FollowGroup(subscriptions, parts);
    const ms = parts.startTimeoutMs ?? 15_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        g.#readyPromise,
        new Promise((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new KvClientError(
                  "unreachable",
                  `no member served ${subscriptions.length} subscriptions within ${ms} ms (tried ${
                    g.#members.join(", ") || "none"
                  }; last error: ${
                    g.#lastError instanceof Error
                      ? g.#lastError.message
                      : "none"
                  })`,
                ),
              ),
            ms,
          );
        }),
      ]);
    } catch (e) {
      await g.close();
      throw e;
    } finally {
      clearTimeout(timer);
    }
    return g;
  }

  /** Milliseconds since the member was last heard from. */
  get staleMs(): number {
    return performance.now() - this.#lastHeard;
  }

  /** The learner address streaming to the group now, if connected. */
  get member(): string | undefined {
    return this.#current;
  }

  /** Times the group moved to another member (or redialed) after a failure. */
  get reconnects(): number {
    return this.#reconnects;
  }

  /** Stops following; pending `waitFor`s fail with `closed`. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#idleTimer);
    this.#failed(new KvClientError("closed", "the group was closed"));
    for (const r of this.replicas) r.close();
    await this.#connection?.close();
    await this.#loop;
  }

  #allBased(): boolean {
    return this.replicas.every((r) => r.based);
  }

  async #run(): Promise<void> {
    let failures = 0;
    let tried = 0;
    while (!this.#closed) {
      if (this.#members.length === 0 || tried >= this.#members.length) {
        tried = 0;
        try {
          const found = await this.#parts.discover();
          if (found.length > 0) {
            this.#members = found;
            this.#memberIndex = 0;
          }
        } catch {
          // Keep the old list; the backoff below spaces the retries.
        }
      }
      const member = this.#members[this.#memberIndex % this.#members.length];
      if (member !== undefined) {
        tried++;
        if (await this.#follow(member)) {
          failures = 0;
          tried = 0;
        }
      }
      this.#current = undefined;
      if (this.#closed) break;
      this.#reconnects++;
      this.#memberIndex++;
      await new Promise((r) =>
        setTimeout(r, backoffDelay(failures++, { initialMs: 20, maxMs: 1000 }))
      );
    }
  }

  /** Streams from one member until its connection ends; true if it delivered anything. */
  async #follow(member: string): Promise<boolean> {
    const colon = member.lastIndexOf(":");
    let delivered = false;
    let connection: TcpConnection<LearnerMessages>;
    try {
      connection = await connectTcp<LearnerMessages>({
        hostname: member.slice(0, colon).replace(/^\[|\]$/g, ""),
        port: Number(member.slice(colon + 1)),
      }, {
        set: learnerMessages,
        secret: this.#parts.token,
        tls: this.#parts.tls,
        handshakeTimeoutMs: this.#idleTimeoutMs,
        handlers: {
          onMessage: (m) => {
            delivered = true;
            this.#onMessage(m, connection);
          },
        },
      });
    } catch (e) {
      this.#lastError = e;
      if (isTransportError(e, "auth_failed") && !this.#allBased()) {
        this.#failed(
          new KvClientError(
            "unauthorized",
            `learner port ${member} refused this client's token: ${
              (e as Error).message
            }`,
          ),
        );
      }
      return false;
    }
    if (this.#closed) {
      await connection.close();
      return false;
    }
    this.#connection = connection;
    this.#current = member;
    this.#lastHeard = performance.now();
    try {
      await connection.call(SubscribeMany, {
        subscriptions: this.replicas.map((r) => ({
          prefix: r.prefix,
          from: r.resumeFrom,
        })),
      }, { timeoutMs: this.#idleTimeoutMs });
      if (this.#allBased()) this.#ready();
      delivered = true;
    } catch (e) {
      this.#lastError = e;
      await connection.close();
    }
    await connection.closed;
    this.#connection = undefined;
    return delivered;
  }

  #onMessage(
    m: Envelope<LearnerMessages>,
    connection: TcpConnection<LearnerMessages>,
  ): void {
    this.#lastHeard = performance.now();
    if (m.type !== "Packed") return;
    let packets: Uint8Array[];
    try {
      packets = unpack(m.message.blob);
      if (packets.length !== this.replicas.length) {
        throw new LearnerStreamError(
          "malformed",
          `a blob of ${packets.length} packets for ${this.replicas.length} subscriptions`,
        );
      }
    } catch (e) {
      this.#lastError = e;
      connection.close();
      return;
    }
    // Subscriptions at the same place get equal packets: decode each
    // distinct one once (they usually come in runs).
    let previous: Uint8Array | undefined;
    let step: SubscriptionStepMessage | undefined;
    let moved = false;
    for (let i = 0; i < packets.length; i++) {
      const p = packets[i]!;
      if (p.length === 0) continue;
      try {
        if (!previous || !sameBytes(previous, p)) {
          step = SubscriptionStep.decode(p);
          previous = p;
        }
        if (this.replicas[i]!.apply(step!)) moved = true;
      } catch (e) {
        // A gap, a duplicate or nonsense: never apply it; resume elsewhere
        // (every replica from its own revision). The hook's own errors go on.
        if (!(e instanceof LearnerStreamError) && !isCodecError(e)) throw e;
        this.#lastError = e;
        connection.close();
        return;
      }
    }
    if (moved && this.#allBased()) this.#ready();
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
