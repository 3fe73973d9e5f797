/**
 * The client end of a learner stream, shared by `Follower` (one
 * subscription) and `FollowGroup` (many over one connection): dials a
 * member's learner port, subscribes, hands every message on, and when the
 * connection breaks or the member goes silent dials the next member
 * (capped backoff, asking where the members are again once all failed).
 * What is subscribed and how messages apply is the owner's ({@link LinkHooks}).
 */
import {
  backoffDelay,
  connectTcp,
  type Envelope,
  isTransportError,
  type TcpConnection,
} from "@strata/transport";
import { KvClientError } from "./client.ts";
import type { FollowerParts } from "./follower.ts";
import { type LearnerMessages, learnerMessages } from "./learner_messages.ts";

/** What the owner of a {@link LearnerLink} does with a connection. */
export interface LinkHooks {
  /**
   * Subscribes on a fresh connection (a call, bounded by `timeoutMs`),
   * each replica from where it stands. @throws when the member refuses.
   */
  subscribe(
    connection: TcpConnection<LearnerMessages>,
    timeoutMs: number,
  ): Promise<void>;
  /** A message from the member; closing `connection` drops the member. */
  onMessage(
    m: Envelope<LearnerMessages>,
    connection: TcpConnection<LearnerMessages>,
  ): void;
  /** True once every replica holds a state. */
  based(): boolean;
  /** The connection ended: forget anything half received. */
  disconnected(): void;
}

/** See the module comment. */
export class LearnerLink {
  readonly #parts: FollowerParts;
  readonly #hooks: LinkHooks;
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

  /** Starts dialing at once. */
  constructor(parts: FollowerParts, hooks: LinkHooks) {
    this.#parts = parts;
    this.#hooks = hooks;
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
   * Resolves once every replica holds a state.
   * @param what the subscriptions, for the error message.
   * @throws KvClientError `unreachable` when no member served them within
   *   `startTimeoutMs`; `unauthorized` when a member refused the token.
   */
  async started(what: string): Promise<void> {
    const ms = this.#parts.startTimeoutMs ?? 15_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        this.#readyPromise,
        new Promise((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new KvClientError(
                  "unreachable",
                  `no member served ${what} within ${ms} ms (tried ${
                    this.#members.join(", ") || "none"
                  }; last error: ${
                    this.#lastError instanceof Error
                      ? this.#lastError.message
                      : "none"
                  })`,
                ),
              ),
            ms,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Tells {@link started} that every replica holds a state now. */
  ready(): void {
    this.#ready();
  }

  /** Records why a member was dropped (said if the start times out). */
  noteError(e: unknown): void {
    this.#lastError = e;
  }

  /** Milliseconds since the member was last heard from. */
  get staleMs(): number {
    return performance.now() - this.#lastHeard;
  }

  /** The learner address streaming now, if connected. */
  get member(): string | undefined {
    return this.#current;
  }

  /** Times it moved to another member (or redialed) after a failure. */
  get reconnects(): number {
    return this.#reconnects;
  }

  /** Stops: closes the connection and ends the loop. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#idleTimer);
    this.#failed(new KvClientError("closed", "the follower was closed"));
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
      this.#hooks.disconnected();
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
            this.#lastHeard = performance.now();
            this.#hooks.onMessage(m, connection);
          },
        },
      });
    } catch (e) {
      this.#lastError = e;
      // A wrong token is not a member failure: say so before start gives up.
      if (isTransportError(e, "auth_failed") && !this.#hooks.based()) {
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
      await this.#hooks.subscribe(connection, this.#idleTimeoutMs);
      if (this.#hooks.based()) this.#ready();
      delivered = true;
    } catch (e) {
      this.#lastError = e;
      await connection.close();
    }
    await connection.closed;
    this.#connection = undefined;
    return delivered;
  }
}
