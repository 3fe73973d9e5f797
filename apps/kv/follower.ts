/**
 * `KvClient.follow`: a local read-only replica of a key prefix, kept
 * current by a member's learner stream (learner_server.ts). Reads are
 * answered locally at {@link Follower.revision}; `waitFor(revision)` gives
 * read-your-writes. When the member fails (or goes silent) the follower
 * dials another one and resumes from the last revision it applied, so the
 * replica sees every change exactly once.
 */
import type { Envelope, TcpClientTls, TcpConnection } from "@strata/transport";
import { FollowedReplica } from "./followed_replica.ts";
import { LearnerLink } from "./learner_link.ts";
import { type LearnerMessages, Subscribe } from "./learner_messages.ts";
import { LearnerStreamError, type ReplicaUpdate } from "./learner_replica.ts";

export type { ReplicaEntry, ReplicaUpdate } from "./learner_replica.ts";

/** Options of `KvClient.follow`. */
export interface FollowOptions {
  /**
   * First revision wanted. Omitted: the replica starts from a snapshot of
   * the prefix (a full copy). Given: it holds the changes from there on
   * (the caller holds the state before), unless that revision is
   * compacted on the member, which then sends a snapshot.
   */
  from?: number;
  /**
   * Learner addresses (`host:port`) to use, tried in this order. Default:
   * asked from each endpoint's `/v1/status`, followers first, starting at a
   * random follower (so learners spread and the leader serves none while a
   * follower is up).
   */
  members?: readonly string[];
  /** No message for this long and the member is taken for dead, ms (default 5000). */
  idleTimeoutMs?: number;
  /** `follow` gives up when no member gave a replica in this long, ms (default 15 000). */
  startTimeoutMs?: number;
  /** Told about every change applied, progress and snapshot (in order). */
  onUpdate?(update: ReplicaUpdate): void;
  /** TLS to the learner ports (members started with --tls-cert). */
  tls?: TcpClientTls;
}

/** What {@link Follower} is built from (KvClient fills it in). */
export interface FollowerParts extends FollowOptions {
  /** The cluster token (its HMAC proves the learner may read); undefined without auth. */
  token?: string;
  /** The members' learner addresses, in the order to try. */
  discover(): Promise<string[]>;
}

/** See the module comment. Create with `KvClient.follow`. */
export class Follower extends FollowedReplica {
  readonly #link: LearnerLink;

  private constructor(prefix: string, parts: FollowerParts) {
    super(prefix, parts.from, parts.onUpdate);
    this.#link = new LearnerLink(parts, {
      subscribe: async (connection, timeoutMs) => {
        await connection.call(Subscribe, {
          prefix: this.prefix,
          from: this.replica.resumeFrom,
        }, { timeoutMs });
      },
      onMessage: (m, connection) => this.#onMessage(m, connection),
      based: () => this.replica.based,
      disconnected: () => this.replica.dropPartial(),
    });
  }

  /**
   * Starts following and resolves once the replica holds a state (a
   * snapshot arrived, or the subscription from `from` was accepted).
   * @throws KvClientError `unreachable` when no member served it within
   *   `startTimeoutMs`; `unauthorized` when a member refused the token.
   */
  static async start(prefix: string, parts: FollowerParts): Promise<Follower> {
    const f = new Follower(prefix, parts);
    try {
      await f.#link.started(`prefix ${JSON.stringify(prefix)}`);
    } catch (e) {
      await f.close();
      throw e;
    }
    return f;
  }

  /** Milliseconds since the member was last heard from (a bound on staleness while connected). */
  get staleMs(): number {
    return this.#link.staleMs;
  }

  /** The learner address streaming to it now, if connected. */
  get member(): string | undefined {
    return this.#link.member;
  }

  /** Times it moved to another member (or redialed) after a failure. */
  get reconnects(): number {
    return this.#link.reconnects;
  }

  /** Stops following; pending `waitFor`s fail with `closed`. */
  async close(): Promise<void> {
    this.closeWaiters();
    await this.#link.close();
  }

  #onMessage(
    m: Envelope<LearnerMessages>,
    connection: TcpConnection<LearnerMessages>,
  ): void {
    let update: ReplicaUpdate | undefined;
    try {
      if (m.type === "Changes") {
        const { from, to, changes } = m.message;
        update = this.replica.applyChanges(from, to, changes);
      } else if (m.type === "SnapshotChunk") {
        const { revision, entries, last } = m.message;
        update = this.replica.applySnapshotChunk(revision, entries, last);
      }
    } catch (e) {
      // A gap, a duplicate or nonsense: never apply it; resume elsewhere.
      if (e instanceof LearnerStreamError) connection.close();
      else throw e;
      return;
    }
    if (!update) return;
    this.#link.ready();
    this.applied(update);
  }
}
