/**
 * A TypeScript client for the replicated KV: finds the leader, spreads
 * nothing it should not (writes go to the leader, reads where asked), and
 * retries only what is safe to retry.
 *
 * - Reads (`get`, `scan`, `cluster`, `status`, `leader`) retry on any node
 *   after any transport failure, timeout, `no_leader` or `unavailable`.
 * - Writes (`put`, `delete`, `cas`, `txn`, `openSession`, `lock`,
 *   `unlock`, `changeMembers`) are re-sent only when they surely were not
 *   applied: the connection was refused (nothing was sent) or a node
 *   answered `no_leader` (it proposed nothing). After a timeout, a
 *   connection lost after sending, or `unavailable`/`timeout` from the
 *   node, the write may still commit: a re-send could apply it a second
 *   time, after another client's acknowledged write, so the client throws
 *   `unknown_outcome` instead (as etcd's client does).
 * - Session keep-alive and close are retried like reads: repeating them
 *   changes nothing.
 */
import { Buffer } from "node:buffer";
import { failedToConnect, onceBody, readToken } from "@strata/edge";
import { Follower, type FollowOptions } from "./follower.ts";
import { FollowGroup, type GroupSubscription } from "./follow_group.ts";

/** What went wrong talking to the cluster. */
export class KvClientError extends Error {
  /** The server's error code (`no_leader`, `not_found`, ...) or `unreachable` / `unknown_outcome`. */
  readonly code: string;
  /** HTTP status, 0 when no answer came. */
  readonly status: number;
  /** The error's other JSON fields (e.g. `leaderHttp` of `no_leader`). */
  readonly details?: Record<string, unknown>;

  /**
   * @param code why; @param status the HTTP status (0: none);
   * @param details the server error's other fields.
   */
  constructor(
    code: string,
    message: string,
    status = 0,
    details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = "KvClientError";
    this.code = code;
    this.status = status;
    if (details) this.details = details;
  }
}

/** A stored value as the client returns it. */
export interface KvEntry {
  key: string;
  value: Uint8Array;
  revision: number;
  createRevision: number;
  version: number;
  session?: number;
}

/** A committed change from `watch`. */
export interface KvWatchEvent {
  type: "put" | "delete";
  key: string;
  revision: number;
  value?: Uint8Array;
}

/** Options of {@link KvClient}. */
export interface KvClientOptions {
  /** Per-request deadline, ms (default 5000). */
  timeoutMs?: number;
  /** Attempts per request across nodes (default 6). */
  attempts?: number;
  /**
   * Bearer token (the cluster's `admin.token`, `write.token` or
   * `read.token`; see {@link readKvToken}).
   */
  token?: string;
  /** A fetch client trusting the nodes' TLS certificate (`tlsClient` of @strata/edge). */
  httpClient?: Deno.HttpClient;
}

/**
 * When a request is re-sent: `always` (reads) and `idempotent` (repeating
 * it changes nothing) after any retriable failure, `unsent` (writes) only
 * when it surely was not applied.
 */
type Retry = "always" | "idempotent" | "unsent";

/** A fetch failure as the client's error: refused, timed out or lost. */
function transportError(endpoint: string, e: unknown): KvClientError {
  const refused = e instanceof TypeError && failedToConnect(e);
  const timedOut = e instanceof DOMException && e.name === "TimeoutError";
  return new KvClientError(
    refused ? "unreachable" : timedOut ? "timeout" : "lost",
    `${endpoint}: ${e instanceof Error ? e.message : e}${
      e instanceof Error && e.cause instanceof Error
        ? ` (${e.cause.message})`
        : ""
    }`,
  );
}

interface WireKv {
  key: string;
  value: string;
  encoding?: "base64";
  revision: number;
  createRevision: number;
  version: number;
  session?: number;
}

function toEntry(w: WireKv): KvEntry {
  return {
    key: w.key,
    value: new Uint8Array(Buffer.from(w.value, "base64")),
    revision: w.revision,
    createRevision: w.createRevision,
    version: w.version,
    ...(w.session !== undefined ? { session: w.session } : {}),
  };
}

const b64 = (v: string | Uint8Array) =>
  Buffer.from(typeof v === "string" ? new TextEncoder().encode(v) : v).toString(
    "base64",
  );
const keyPath = (key: string) =>
  key.split("/").map(encodeURIComponent).join("/");

/** Client of a strata raft-kv cluster over its HTTP API. */
export class KvClient {
  readonly #endpoints: string[];
  #preferred = 0;
  readonly #timeoutMs: number;
  readonly #attempts: number;
  readonly #headers: Record<string, string>;
  readonly #httpClient?: Deno.HttpClient;
  readonly #token?: string;

  /** @param endpoints node HTTP addresses, `http://127.0.0.1:2380` or `127.0.0.1:2380`. */
  constructor(endpoints: string[], options: KvClientOptions = {}) {
    if (endpoints.length === 0) throw new Error("give at least one endpoint");
    this.#endpoints = endpoints.map((e) =>
      (e.startsWith("http") ? e : `http://${e}`).replace(/\/$/, "")
    );
    this.#timeoutMs = options.timeoutMs ?? 5000;
    this.#attempts = options.attempts ?? 6;
    this.#headers = options.token
      ? { authorization: `Bearer ${options.token}` }
      : {};
    this.#token = options.token;
    this.#httpClient = options.httpClient;
  }

  /**
   * Stores `value` under `key`. @returns the revision it was committed at.
   * @throws KvClientError `unknown_outcome` when the put may or may not have
   *   been applied (a timeout or lost connection after sending): read the
   *   key to find out; it is not re-sent.
   */
  async put(
    key: string,
    value: string | Uint8Array,
    options: { session?: number } = {},
  ): Promise<number> {
    const r = await this.#request("PUT", `/v1/kv/${keyPath(key)}`, {
      value: b64(value),
      encoding: "base64",
      ...options,
    }, "unsent");
    return r.revision as number;
  }

  /** The key's value, or undefined when absent. */
  async get(
    key: string,
    consistency: "linearizable" | "lease" | "stale" = "linearizable",
  ): Promise<KvEntry | undefined> {
    try {
      return toEntry(
        await this.#request(
          "GET",
          `/v1/kv/${keyPath(key)}?encoding=base64&consistency=${consistency}`,
          undefined,
          "always",
        ) as unknown as WireKv,
      );
    } catch (e) {
      if (e instanceof KvClientError && e.code === "not_found") {
        return undefined;
      }
      throw e;
    }
  }

  /**
   * Deletes `key`. @returns whether it existed, and the revision.
   * @throws KvClientError `unknown_outcome` as {@link put}.
   */
  async delete(key: string): Promise<{ deleted: boolean; revision: number }> {
    const r = await this.#request(
      "DELETE",
      `/v1/kv/${keyPath(key)}`,
      undefined,
      "unsent",
    );
    return { deleted: r.deleted as boolean, revision: r.revision as number };
  }

  /** Every key under `prefix`, in order, fetched a page at a time. */
  async *scan(prefix = "", pageSize = 500): AsyncGenerator<KvEntry> {
    let after: string | undefined;
    for (;;) {
      const q = new URLSearchParams({
        prefix,
        limit: String(pageSize),
        encoding: "base64",
      });
      if (after !== undefined) q.set("after", after);
      const r = await this.#request("GET", `/v1/kv?${q}`, undefined, "always");
      const kvs = r.kvs as WireKv[];
      for (const kv of kvs) yield toEntry(kv);
      if (!r.more || kvs.length === 0) return;
      after = kvs[kvs.length - 1]!.key;
    }
  }

  /** Compare-and-swap: sets `value` (null deletes) only if the expectation holds. */
  async cas(
    key: string,
    expect: { value?: string | Uint8Array | null; revision?: number },
    value: string | Uint8Array | null,
  ): Promise<{ succeeded: boolean; revision: number; current?: KvEntry }> {
    const body: Record<string, unknown> = {
      encoding: "base64",
      value: value === null ? null : b64(value),
    };
    if (expect.value !== undefined) {
      body.expectValue = expect.value === null ? null : b64(expect.value);
    }
    if (expect.revision !== undefined) body.expectRevision = expect.revision;
    const r = await this.#request(
      "POST",
      `/v1/kv/${keyPath(key)}/cas`,
      body,
      "unsent",
    );
    return {
      succeeded: r.succeeded as boolean,
      revision: r.revision as number,
      ...(r.current ? { current: toEntry(r.current as WireKv) } : {}),
    };
  }

  /** A transaction, as the HTTP API takes it (`POST /v1/txn`). */
  txn(body: Record<string, unknown>): Promise<Record<string, unknown>> {
    return this.#request("POST", "/v1/txn", body, "unsent");
  }

  /**
   * Opens a session kept alive every ttl/3 until closed. Keys put with it
   * and locks taken with it end when it ends. With `keepAlive: false` the
   * caller sends the keep-alives ({@link keepAlive}) on its own schedule,
   * e.g. to time a lease from their send times.
   */
  async openSession(
    ttlMs: number,
    options: { keepAlive?: boolean } = {},
  ): Promise<KvSession> {
    const r = await this.#request("POST", "/v1/sessions", { ttlMs }, "unsent");
    return new KvSession(this, r.id as number, ttlMs, options.keepAlive);
  }

  /** Renews session `id` once. @throws KvClientError `not_found` when it has expired. */
  async keepAlive(id: number): Promise<void> {
    const r = await this.#request(
      "POST",
      `/v1/sessions/${id}/keepalive`,
      undefined,
      "idempotent",
    );
    // A follower renewed it through the log (an fsync on every node) and
    // named the leader, which renews in memory: go there from now on.
    const leader = this.#endpointOf(r.leaderHttp);
    if (leader !== undefined) this.#preferred = leader;
  }

  /** @internal closes a session. */
  async closeSession(id: number): Promise<void> {
    await this.#request("DELETE", `/v1/sessions/${id}`, undefined, "idempotent")
      .catch((e) => {
        if (!(e instanceof KvClientError && e.code === "not_found")) throw e;
      });
  }

  /**
   * Takes lock `name` for `session`, waiting up to `waitMs`.
   * @returns the fencing token, or undefined when another session holds it.
   */
  async lock(
    name: string,
    session: number,
    waitMs = 0,
  ): Promise<number | undefined> {
    try {
      const r = await this.#request(
        "POST",
        `/v1/locks/${keyPath(name)}`,
        { session, waitMs },
        "unsent",
        waitMs,
      );
      return r.token as number;
    } catch (e) {
      if (e instanceof KvClientError && e.status === 409) return undefined;
      throw e;
    }
  }

  /** Releases lock `name` held by `session`. */
  async unlock(name: string, session: number): Promise<boolean> {
    const r = await this.#request("DELETE", `/v1/locks/${keyPath(name)}`, {
      session,
    }, "unsent");
    return r.released as boolean;
  }

  /**
   * Leader election on a lock (the Chubby recipe): campaign waits until
   * this session is the leader of `election` and returns its fencing token.
   */
  async campaign(
    election: string,
    session: number,
    waitMs = 30_000,
  ): Promise<number> {
    const deadline = performance.now() + waitMs;
    for (;;) {
      const token = await this.lock(
        `elections/${election}`,
        session,
        Math.min(10_000, Math.max(0, deadline - performance.now())),
      );
      if (token !== undefined) return token;
      if (performance.now() >= deadline) {
        throw new KvClientError(
          "timeout",
          `not elected leader of ${election} within ${waitMs} ms`,
        );
      }
    }
  }

  /** The session leading `election`, or undefined. */
  async leader(
    election: string,
  ): Promise<{ session: number; token: number } | undefined> {
    try {
      const r = await this.#request(
        "GET",
        `/v1/locks/${keyPath(`elections/${election}`)}`,
        undefined,
        "always",
      );
      return { session: r.holder as number, token: r.token as number };
    } catch (e) {
      if (e instanceof KvClientError && e.code === "not_found") {
        return undefined;
      }
      throw e;
    }
  }

  /**
   * The configuration as the answering node sees it: members, leader,
   * voters, learners, and `joint` (with `votersOutgoing`) while a joint
   * change is being applied.
   */
  cluster(): Promise<Record<string, unknown>> {
    return this.#request("GET", "/v1/cluster", undefined, "always");
  }

  /**
   * Applies several membership changes at once through a joint
   * configuration (`POST /v1/cluster/changes`, admin token); resolves with
   * the new configuration once the leader has applied it. Retried only
   * when it surely was not sent (or reached a follower).
   * @throws KvClientError `conflict` (another change is in progress, or the
   *   change does not fit the members), `bad_request`, `not_found`,
   *   `unknown_outcome` (it may still apply: look at {@link cluster}).
   */
  changeMembers(
    changes: Array<
      | {
        action: "add";
        id: number;
        peerAddress: string;
        httpAddress?: string;
        learner?: boolean;
      }
      | { action: "promote" | "demote" | "remove"; id: number }
    >,
  ): Promise<Record<string, unknown>> {
    return this.#request("POST", "/v1/cluster/changes", { changes }, "unsent");
  }

  /** A node's status. */
  status(endpoint?: string): Promise<Record<string, unknown>> {
    return endpoint === undefined
      ? this.#request("GET", "/v1/status", undefined, "always")
      : this.#once(endpoint, "GET", "/v1/status", undefined, this.#timeoutMs);
  }

  /**
   * A local read-only replica of the keys under `prefix`, kept current by
   * a member's learner stream (framed TCP on the members' learner ports,
   * authenticated with this client's token): reads are answered locally
   * at the replica's revision, `waitFor(revision)` waits for a write to
   * arrive, and a failed member is replaced by another without gaps or
   * duplicates. Close it when done.
   * @throws KvClientError `unreachable` when no member serves it in time.
   */
  follow(prefix: string, options: FollowOptions = {}): Promise<Follower> {
    const given = options.members;
    return Follower.start(prefix, {
      ...options,
      token: this.#token,
      discover: given
        ? () => Promise.resolve([...given])
        : () => this.learnerMembers(),
    });
  }

  /**
   * Many followed prefixes (or many replicas of one) over one learner
   * connection: the member sends each of its pumps as one blob packed with
   * multi-packet compression, which this side unpacks per replica
   * (follow_group.ts). Options as {@link follow}'s (`from` and `onUpdate`
   * go per subscription). Close the group when done.
   * @throws KvClientError `unreachable` when no member serves them in time.
   */
  followMany(
    subscriptions: readonly GroupSubscription[],
    options: Omit<FollowOptions, "from" | "onUpdate"> = {},
  ): Promise<FollowGroup> {
    const given = options.members;
    return FollowGroup.start(subscriptions, {
      ...options,
      token: this.#token,
      discover: given
        ? () => Promise.resolve([...given])
        : () => this.learnerMembers(),
    });
  }

  /**
   * The members' learner addresses (`host:port`, from each endpoint's
   * `/v1/status`), followers first from a random one, the leader last.
   */
  async learnerMembers(): Promise<string[]> {
    const found = await Promise.all(this.#endpoints.map(async (endpoint) => {
      try {
        const s = await this.#once(
          endpoint,
          "GET",
          "/v1/status",
          undefined,
          this.#timeoutMs,
        ) as { learner?: unknown; role?: unknown };
        if (typeof s.learner !== "string") return undefined;
        // The port the node bound, on the host this client reaches it by.
        const port = s.learner.slice(s.learner.lastIndexOf(":") + 1);
        return {
          address: `${new URL(endpoint).hostname}:${port}`,
          leader: s.role === "leader",
        };
      } catch {
        return undefined;
      }
    }));
    const up = found.filter((f) => f !== undefined);
    const followers = up.filter((f) => !f.leader).map((f) => f.address);
    const start = Math.floor(Math.random() * followers.length);
    return [
      ...followers.slice(start),
      ...followers.slice(0, start),
      ...up.filter((f) => f.leader).map((f) => f.address),
    ];
  }

  /**
   * Streams committed changes under `prefix` from revision `from`,
   * reconnecting (to any node, resuming after the last revision seen)
   * until `signal` aborts.
   */
  async *watch(
    prefix: string,
    from: number | undefined,
    signal: AbortSignal,
  ): AsyncGenerator<KvWatchEvent> {
    let next = from;
    let failures = 0;
    while (!signal.aborted) {
      const base = this.#endpoints[this.#preferred]!;
      const q = new URLSearchParams({ prefix, encoding: "base64" });
      if (next !== undefined) q.set("from", String(next));
      try {
        const res = await fetch(`${base}/v1/watch?${q}`, {
          signal,
          headers: this.#headers,
          ...(this.#httpClient ? { client: this.#httpClient } : {}),
        });
        if (!res.ok) {
          const body = await res.json().catch(() => ({}));
          const err =
            (body as { error?: { code: string; message: string } }).error;
          throw new KvClientError(
            err?.code ?? "http_error",
            err?.message ?? `HTTP ${res.status}`,
            res.status,
          );
        }
        failures = 0;
        const decoder = new TextDecoder();
        let buf = "";
        // Cancel the body on abort ourselves: once in many runs a test's
        // watch stayed connected minutes after its fetch's signal aborted,
        // its body read still waiting for the next event.
        const reader = res.body!.getReader();
        const cancel = () => void reader.cancel().catch(() => {});
        signal.addEventListener("abort", cancel, { once: true });
        try {
          for (;;) {
            const { value: chunk, done } = await reader.read();
            if (done) break;
            buf += decoder.decode(chunk, { stream: true });
            let end: number;
            while ((end = buf.indexOf("\n\n")) >= 0) {
              const block = buf.slice(0, end);
              buf = buf.slice(end + 2);
              const data = block.split("\n").filter((l) =>
                l.startsWith("data:")
              )
                .map((l) => l.slice(5).trim()).join("\n");
              if (!data) continue;
              const msg = JSON.parse(data);
              if (msg.error) {
                throw new KvClientError(msg.error.code, msg.error.message);
              }
              const e: KvWatchEvent = {
                type: msg.type,
                key: msg.key,
                revision: msg.revision,
              };
              if (msg.value !== undefined) {
                e.value = new Uint8Array(Buffer.from(msg.value, "base64"));
              }
              next = e.revision + 1;
              yield e;
            }
          }
        } finally {
          signal.removeEventListener("abort", cancel);
          // Also when the caller stops iterating: close the connection.
          void reader.cancel().catch(() => {});
        }
      } catch (e) {
        if (signal.aborted) return;
        if (e instanceof KvClientError && e.status >= 400 && e.status < 500) {
          throw e;
        }
        if (e instanceof KvClientError && e.code === "compacted") throw e;
        if (++failures > this.#attempts) throw e;
        this.#preferred = (this.#preferred + 1) % this.#endpoints.length;
        await sleep(Math.min(1000, 50 * 2 ** failures), signal);
      }
    }
  }

  async #request(
    method: string,
    path: string,
    body: unknown,
    retry: Retry,
    extraTimeoutMs = 0,
  ): Promise<Record<string, unknown>> {
    let last: unknown;
    for (let attempt = 0; attempt < this.#attempts; attempt++) {
      const endpoint = this.#endpoints[this.#preferred]!;
      try {
        return await this.#once(
          endpoint,
          method,
          path,
          body,
          this.#timeoutMs + extraTimeoutMs,
          retry === "unsent",
        );
      } catch (e) {
        last = e;
        if (!(e instanceof KvClientError)) throw e;
        // Surely not applied: nothing was sent, or the node proposed nothing.
        const notApplied = e.code === "unreachable" || e.code === "no_leader";
        const retriable = notApplied || e.code === "unavailable" ||
          e.code === "timeout" || e.code === "lost";
        if (!retriable) throw e;
        if (retry === "unsent" && !notApplied) {
          throw new KvClientError(
            "unknown_outcome",
            `${method} ${path}: ${e.message}; it may or may not have been applied ` +
              "(not re-sent: a second copy could land after other clients' writes)",
            e.status,
          );
        }
        this.#preferred = this.#leaderEndpoint(e) ??
          (this.#preferred + 1) % this.#endpoints.length;
        await sleep(Math.min(1000, 25 * 2 ** attempt));
      }
    }
    throw last;
  }

  /** The index of the endpoint a `no_leader` answer names as leader, if given. */
  #leaderEndpoint(e: KvClientError): number | undefined {
    return this.#endpointOf(
      e.code === "no_leader" ? e.details?.leaderHttp : undefined,
    );
  }

  /** The index of the endpoint `hint` (`host:port` or a URL) names, if another than the preferred one. */
  #endpointOf(hint: unknown): number | undefined {
    if (typeof hint !== "string" || hint === "") return undefined;
    // A bare host:port takes the scheme of the endpoints (https with TLS).
    const scheme = this.#endpoints[0]!.startsWith("https:") ? "https" : "http";
    const url = (hint.startsWith("http") ? hint : `${scheme}://${hint}`)
      .replace(/\/$/, "");
    const i = this.#endpoints.indexOf(url);
    return i >= 0 && i !== this.#preferred ? i : undefined;
  }

  async #once(
    endpoint: string,
    method: string,
    path: string,
    body: unknown,
    timeoutMs: number,
    sendOnce = false,
  ): Promise<Record<string, unknown>> {
    const text = body === undefined ? undefined : JSON.stringify(body);
    let res: Response;
    try {
      res = await fetch(endpoint + path, {
        method,
        // Deno's fetch re-sends a request with a replayable body once when
        // the connection closes before the answer (denoland/deno#35610),
        // even a POST: a write's body goes as a stream, which it never replays.
        body: sendOnce ? onceBody(text) : text,
        headers: body === undefined
          ? this.#headers
          : { ...this.#headers, "content-type": "application/json" },
        signal: AbortSignal.timeout(timeoutMs),
        ...(this.#httpClient ? { client: this.#httpClient } : {}),
      });
    } catch (e) {
      throw transportError(endpoint, e);
    }
    let answer: string;
    try {
      answer = await res.text();
    } catch (e) {
      // The connection broke (or the deadline passed) mid-answer: the
      // request was received, so its outcome is unknown.
      throw transportError(endpoint, e);
    }
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(answer);
    } catch {
      throw new KvClientError(
        "bad_response",
        `${endpoint}${path}: not JSON (HTTP ${res.status})`,
        res.status,
      );
    }
    if (!res.ok) {
      const { code, message, ...details } = (json.error ?? {}) as Record<
        string,
        unknown
      >;
      throw new KvClientError(
        typeof code === "string" ? code : "http_error",
        typeof message === "string" ? message : `HTTP ${res.status}`,
        res.status,
        Object.keys(details).length ? details : undefined,
      );
    }
    return json;
  }
}

/** An open session; keeps itself alive until `close()`. */
export class KvSession {
  #timer: ReturnType<typeof setInterval> | undefined;
  /** Set when a keep-alive failed for longer than the TTL: the session may be gone. */
  lost = false;

  /** @internal use {@link KvClient.openSession}. */
  constructor(
    readonly client: KvClient,
    readonly id: number,
    readonly ttlMs: number,
    keepAlive = true,
  ) {
    if (!keepAlive) return;
    let lastOk = performance.now();
    this.#timer = setInterval(() => {
      client.keepAlive(id).then(() => (lastOk = performance.now())).catch(
        () => {
          if (performance.now() - lastOk > ttlMs) this.lost = true;
        },
      );
    }, Math.max(100, Math.floor(ttlMs / 3)));
  }

  /** Stops the keep-alives and ends the session (its keys and locks go). */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.client.closeSession(this.id);
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
}

/**
 * The token a kv tool uses: `readToken` of @strata/edge with
 * `./data/kv` (where `deno task kv` keeps its secrets) as the default dir.
 * @throws Error when a named file cannot be read.
 */
export function readKvToken(options: {
  token?: string;
  tokenFile?: string;
  defaultDir?: string;
} = {}): Promise<string | undefined> {
  return readToken({
    ...options,
    defaultDir: options.defaultDir ?? "./data/kv",
  });
}
