/**
 * A TypeScript client for the replicated KV: finds the leader, spreads
 * nothing it should not (writes go to the leader, reads where asked), and
 * retries only what is safe to retry.
 *
 * - Reads (`get`, `scan`, `status`) retry on any node.
 * - `put` and `delete` retry after a lost connection or `no_leader`: doing
 *   either twice leaves the same value (a retried put may take a second
 *   revision, never a different value).
 * - `cas`, `txn`, sessions and locks retry only when the request surely
 *   did not arrive (connection refused); otherwise the outcome is unknown
 *   and the error says so.
 */
import { Buffer } from "node:buffer";
import { readSecretFile } from "@strata/edge";

/** What went wrong talking to the cluster. */
export class KvClientError extends Error {
  /** The server's error code (`no_leader`, `not_found`, ...) or `unreachable` / `unknown_outcome`. */
  readonly code: string;
  /** HTTP status, 0 when no answer came. */
  readonly status: number;

  /** @param code why; @param status the HTTP status (0: none). */
  constructor(code: string, message: string, status = 0) {
    super(message);
    this.name = "KvClientError";
    this.code = code;
    this.status = status;
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

type Retry = "always" | "idempotent" | "unsent";

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
    this.#httpClient = options.httpClient;
  }

  /** Stores `value` under `key`. @returns the revision it was committed at. */
  async put(
    key: string,
    value: string | Uint8Array,
    options: { session?: number } = {},
  ): Promise<number> {
    const r = await this.#request("PUT", `/v1/kv/${keyPath(key)}`, {
      value: b64(value),
      encoding: "base64",
      ...options,
    }, "idempotent");
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

  /** Deletes `key`. @returns whether it existed, and the revision. */
  async delete(key: string): Promise<{ deleted: boolean; revision: number }> {
    const r = await this.#request(
      "DELETE",
      `/v1/kv/${keyPath(key)}`,
      undefined,
      "idempotent",
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
   * and locks taken with it end when it ends.
   */
  async openSession(ttlMs: number): Promise<KvSession> {
    const r = await this.#request("POST", "/v1/sessions", { ttlMs }, "unsent");
    return new KvSession(this, r.id as number, ttlMs);
  }

  /** @internal keep-alive of a session. */
  async keepAlive(id: number): Promise<void> {
    await this.#request(
      "POST",
      `/v1/sessions/${id}/keepalive`,
      undefined,
      "idempotent",
    );
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
    }, "idempotent");
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
    const deadline = Date.now() + waitMs;
    for (;;) {
      const token = await this.lock(
        `elections/${election}`,
        session,
        Math.min(10_000, Math.max(0, deadline - Date.now())),
      );
      if (token !== undefined) return token;
      if (Date.now() >= deadline) {
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
        for await (const chunk of res.body!) {
          buf += decoder.decode(chunk, { stream: true });
          let end: number;
          while ((end = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, end);
            buf = buf.slice(end + 2);
            const data = block.split("\n").filter((l) => l.startsWith("data:"))
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
        );
      } catch (e) {
        last = e;
        if (!(e instanceof KvClientError)) throw e;
        const unsent = e.code === "unreachable";
        const retriable = e.code === "no_leader" || e.code === "unavailable" ||
          e.code === "timeout" || unsent ||
          e.code === "lost";
        if (!retriable) throw e;
        if (retry === "unsent" && !unsent && e.code !== "no_leader") {
          throw new KvClientError(
            "unknown_outcome",
            `${method} ${path}: ${e.message}; it may or may not have been applied`,
            e.status,
          );
        }
        this.#preferred = (this.#preferred + 1) % this.#endpoints.length;
        await sleep(Math.min(1000, 25 * 2 ** attempt));
      }
    }
    throw last;
  }

  async #once(
    endpoint: string,
    method: string,
    path: string,
    body: unknown,
    timeoutMs: number,
  ): Promise<Record<string, unknown>> {
    let res: Response;
    try {
      res = await fetch(endpoint + path, {
        method,
        body: body === undefined ? undefined : JSON.stringify(body),
        headers: body === undefined
          ? this.#headers
          : { ...this.#headers, "content-type": "application/json" },
        signal: AbortSignal.timeout(timeoutMs),
        ...(this.#httpClient ? { client: this.#httpClient } : {}),
      });
    } catch (e) {
      const refused = e instanceof TypeError &&
        /refused|ECONNREFUSED|connect/i.test(String(e.message ?? e));
      const timedOut = e instanceof DOMException && e.name === "TimeoutError";
      throw new KvClientError(
        refused ? "unreachable" : timedOut ? "timeout" : "lost",
        `${endpoint}: ${e instanceof Error ? e.message : e}`,
      );
    }
    const text = await res.text();
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(text);
    } catch {
      throw new KvClientError(
        "bad_response",
        `${endpoint}${path}: not JSON (HTTP ${res.status})`,
        res.status,
      );
    }
    if (!res.ok) {
      const err = json.error as { code?: string; message?: string } | undefined;
      throw new KvClientError(
        err?.code ?? "http_error",
        err?.message ?? `HTTP ${res.status}`,
        res.status,
      );
    }
    return json;
  }
}

/** An open session; keeps itself alive until `close()`. */
export class KvSession {
  #timer: ReturnType<typeof setInterval>;
  /** Set when a keep-alive failed for longer than the TTL: the session may be gone. */
  lost = false;

  /** @internal use {@link KvClient.openSession}. */
  constructor(
    readonly client: KvClient,
    readonly id: number,
    readonly ttlMs: number,
  ) {
    let lastOk = Date.now();
    this.#timer = setInterval(() => {
      client.keepAlive(id).then(() => (lastOk = Date.now())).catch(() => {
        if (Date.now() - lastOk > ttlMs) this.lost = true;
      });
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
 * The token a kv tool uses: `token`, else the file `tokenFile`, else the
 * environment variable STRATA_TOKEN, else `<defaultDir>/admin.token` when
 * that file exists (what `deno task kv` generates), else none.
 * @throws Error when a named file cannot be read.
 */
export async function readKvToken(options: {
  token?: string;
  tokenFile?: string;
  defaultDir?: string;
} = {}): Promise<string | undefined> {
  if (options.token) return options.token;
  if (options.tokenFile) return await readSecretFile(options.tokenFile);
  const env = Deno.env.get("STRATA_TOKEN");
  if (env) return env;
  const fallback = `${options.defaultDir ?? "./data/kv"}/admin.token`;
  try {
    return await readSecretFile(fallback);
  } catch {
    return undefined;
  }
}
