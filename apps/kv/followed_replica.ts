/**
 * The application's side of one followed prefix: a {@link LearnerReplica}
 * read locally, with `waitFor(revision)` and the `onUpdate` hook. A
 * {@link Follower} (one connection) and each replica of a
 * {@link FollowGroup} (many over one connection) are one of these; they
 * differ only in how the stream reaches them.
 */
import { KvClientError } from "./client.ts";
import {
  LearnerReplica,
  type ReplicaEntry,
  type ReplicaUpdate,
} from "./learner_replica.ts";

interface Waiter {
  revision: number;
  resolve(): void;
  reject(e: Error): void;
}

/** See the module comment. */
export class FollowedReplica {
  /** The replica the stream feeds. */
  protected readonly replica: LearnerReplica;
  readonly #onUpdate: ((update: ReplicaUpdate) => void) | undefined;
  #waiters: Waiter[] = [];
  #closed = false;

  /**
   * @param prefix the keys followed.
   * @param from first revision wanted (undefined: a snapshot first).
   * @param onUpdate told about every update applied, in order.
   */
  constructor(
    prefix: string,
    from: number | undefined,
    onUpdate?: (update: ReplicaUpdate) => void,
  ) {
    this.replica = new LearnerReplica(prefix, from);
    this.#onUpdate = onUpdate;
  }

  /** The prefix followed. */
  get prefix(): string {
    return this.replica.prefix;
  }

  /**
   * The revision the replica stands at: every change up to it is applied.
   * Reads made in one synchronous stretch of code all see this revision.
   */
  get revision(): number {
    return this.replica.revision;
  }

  /** Number of keys held. */
  get size(): number {
    return this.replica.size;
  }

  /** A key's value at {@link revision}, read locally. */
  get(key: string): ReplicaEntry | undefined {
    return this.replica.get(key);
  }

  /** Keys under `prefix` (default: all held), after `after`, at most `limit`, in order, read locally. */
  scan(
    prefix = "",
    options: { after?: string; limit?: number } = {},
  ): ReplicaEntry[] {
    return this.replica.scan(prefix, options.after, options.limit);
  }

  /**
   * Resolves once the replica stands at `revision` or later (e.g. the
   * revision a put returned: read-your-writes).
   * @throws KvClientError `timeout` after `timeoutMs` (default 10 000), or
   *   `closed` when it is closed first.
   */
  waitFor(
    revision: number,
    options: { timeoutMs?: number } = {},
  ): Promise<void> {
    if (this.replica.revision >= revision) return Promise.resolve();
    if (this.#closed) {
      return Promise.reject(
        new KvClientError("closed", "the follower is closed"),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const ms = options.timeoutMs ?? 10_000;
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(
          new KvClientError(
            "timeout",
            `the replica of ${
              JSON.stringify(this.prefix)
            } did not reach revision ${revision} within ${ms} ms (it stands at ${this.revision})`,
          ),
        );
      }, ms);
      const waiter: Waiter = {
        revision,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.#waiters.push(waiter);
    });
  }

  /** After an update was applied: wakes the waiters it satisfies, then tells the hook. */
  protected applied(update: ReplicaUpdate): void {
    if (this.#waiters.length > 0) {
      const r = this.replica.revision;
      const done = this.#waiters.filter((w) => w.revision <= r);
      if (done.length > 0) {
        this.#waiters = this.#waiters.filter((w) => w.revision > r);
        for (const w of done) w.resolve();
      }
    }
    // Last: the application's hook may throw; the replica is already current.
    this.#onUpdate?.(update);
  }

  /** Marks it closed: pending and later `waitFor`s fail with `closed`. */
  protected closeWaiters(): void {
    this.#closed = true;
    for (const w of this.#waiters) {
      w.reject(new KvClientError("closed", "the follower was closed"));
    }
    this.#waiters = [];
  }
}
