/**
 * `KvClient.follow`: a local read-only replica of a key prefix, kept
 * current by a member's learner stream (learner_server.ts). Reads are
 * answered locally at {@link Follower.revision}; `waitFor(revision)` gives
 * read-your-writes. When the member fails (or goes silent) the follower
 * dials another one and resumes from the last revision it applied, so the
 * replica sees every change exactly once.
 */
import {
  backoffDelay,
  connectTcp,
  isTransportError,
  type TcpClientTls,
  type TcpConnection,
} from "@strata/transport";
import type { Envelope } from "@strata/transport";
import { KvClientError } from "./client.ts";
import { FollowedReplica } from "./followed_replica.ts";
import {
  type LearnerMessages,
  learnerMessages,
  Subscribe,
} from "./learner_messages.ts";
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

  private constructor(prefix: string, parts: FollowerParts) {
    super(prefix, parts.from, parts.onUpdate);
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
   * Starts following and resolves once the replica holds a state (a
   * snapshot arrived, or the subscription from `from` was accepted).
   * @throws KvClientError `unreachable` when no member served it within
   *   `startTimeoutMs`; `unauthorized` when a member refused the token.
   */
  static async start(prefix: string, parts: FollowerParts): Promise<Follower> {
    const f = new Follower(prefix, parts);
    const ms = parts.startTimeoutMs ?? 15_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        f.#readyPromise,
        new Promise((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new KvClientError(
                  "unreachable",
                  `no member served prefix ${
                    JSON.stringify(prefix)
                  } within ${ms} ms (tried ${
                    f.#members.join(", ") || "none"
                  }; last error: ${
                    f.#lastError instanceof Error
                      ? f.#lastError.message
                      : "none"
                  })`,
                ),
              ),
            ms,
          );
        }),
      ]);
    } catch (e) {
      await f.close();
      throw e;
    } finally {
      clearTimeout(timer);
    }
    return f;
  }

  /** Milliseconds since the member was last heard from (a bound on staleness while connected). */
  get staleMs(): number {
    return performance.now() - this.#lastHeard;
  }

  /** The learner address streaming to it now, if connected. */
  get member(): string | undefined {
    return this.#current;
  }

  /** Times it moved to another member (or redialed) after a failure. */
  get reconnects(): number {
    return this.#reconnects;
  }

  /** Stops following; pending `waitFor`s fail with `closed`. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#idleTimer);
    this.#failed(new KvClientError("closed", "the follower was closed"));
    this.closeWaiters();
    await this.#connection?.close();
    await this.#loop;
  }

  async #run(): Promise<void> {
    let failures = 0;
    let tried = 0;
    while (!this.#closed) {
      if (this.#members.length === 0 || tried >= this.#members.length) {
        // Start, or every member failed once: ask again where they are.
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
      this.replica.dropPartial();
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
      // A wrong token is not a member failure: say so before start gives up.
      if (isTransportError(e, "auth_failed") && !this.replica.based) {
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
      await connection.call(Subscribe, {
        prefix: this.prefix,
        from: this.replica.resumeFrom,
      }, { timeoutMs: this.#idleTimeoutMs });
      if (this.replica.based) this.#ready();
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
    this.#ready();
    this.applied(update);
  }
}
