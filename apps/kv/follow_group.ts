/**
 * `KvClient.followMany`: many followed prefixes (or many copies of one)
 * over ONE learner connection to a member. The member answers each of its
 * pumps with one {@link Packed} blob — multi-packet compression of every
 * subscription's step, so subscriptions at the same place cost it one
 * packet's bytes however many there are — and this side unpacks it and
 * feeds each replica its own packet. On a member failure the whole group
 * moves to another member, each replica resuming from its own revision.
 */
import { type Envelope, type TcpConnection, unpack } from "@strata/transport";
import { Buffer } from "node:buffer";
import { isCodecError } from "@strata/codec";
import { LearnerLink } from "./learner_link.ts";
import { FollowedReplica } from "./followed_replica.ts";
import type { FollowerParts } from "./follower.ts";
import {
  type LearnerMessages,
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
  /** The group feeds it a packet's step (not for applications); @returns whether the replica moved. */
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
  readonly #link: LearnerLink;

  private constructor(
    subscriptions: readonly GroupSubscription[],
    parts: FollowerParts,
  ) {
    this.replicas = subscriptions.map((s) =>
      new GroupReplica(s.prefix, s.from, s.onUpdate)
    );
    this.#link = new LearnerLink(parts, {
      subscribe: async (connection, timeoutMs) => {
        await connection.call(SubscribeMany, {
          subscriptions: this.replicas.map((r) => ({
            prefix: r.prefix,
            from: r.resumeFrom,
          })),
        }, { timeoutMs });
      },
      onMessage: (m, connection) => this.#onMessage(m, connection),
      based: () => this.#allBased(),
      disconnected: () => {
        // A snapshot travels whole in one packet: nothing is half received.
      },
    });
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
    try {
      await g.#link.started(`${subscriptions.length} subscriptions`);
    } catch (e) {
      await g.close();
      throw e;
    }
    return g;
  }

  /** Milliseconds since the member was last heard from. */
  get staleMs(): number {
    return this.#link.staleMs;
  }

  /** The learner address streaming to the group now, if connected. */
  get member(): string | undefined {
    return this.#link.member;
  }

  /** Times the group moved to another member (or redialed) after a failure. */
  get reconnects(): number {
    return this.#link.reconnects;
  }

  /** Stops following; pending `waitFor`s fail with `closed`. */
  async close(): Promise<void> {
    for (const r of this.replicas) r.close();
    await this.#link.close();
  }

  #allBased(): boolean {
    return this.replicas.every((r) => r.based);
  }

  #onMessage(
    m: Envelope<LearnerMessages>,
    connection: TcpConnection<LearnerMessages>,
  ): void {
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
      this.#link.noteError(e);
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
        this.#link.noteError(e);
        connection.close();
        return;
      }
    }
    if (moved && this.#allBased()) this.#link.ready();
  }
}

/** Byte equality, natively (snapshot packets run to kilobytes). */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length &&
    Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);
}
