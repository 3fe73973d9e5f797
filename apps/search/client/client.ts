/**
 * @module
 * A TypeScript client of the search coordinator's public API: bulk
 * indexing (NDJSON), search, get, delete, a user's documents and the
 * cluster status. Every answer is checked with zod; an error answer
 * becomes a {@link SearchClientError} carrying the server's code.
 */
import { z } from "zod";
import { authHeaders, readToken } from "@strata/edge";
import type { SearchDocument, StoredDocument } from "../document.ts";

/** Documents per bulk request {@link SearchClient.index} sends by default. */
export const DEFAULT_BATCH = 500;

/** An error answer of the service, or a failure to reach it. */
export class SearchClientError extends Error {
  /**
   * @param code the server's error code (`bad_query`, `not_found`, …), or
   *   `unreachable` / `bad_answer` for failures on the client's side
   * @param status the HTTP status (0 when there was no answer)
   */
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = "SearchClientError";
  }
}

const ErrorBodySchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.unknown().optional(),
  }),
});

const StoredDocumentSchema = z.object({
  id: z.string(),
  user_id: z.number(),
  name: z.string(),
  body: z.string(),
  created: z.number(),
});

/** One hit of {@link SearchClient.search}. */
export const SearchHitSchema = z.object({
  id: z.string(),
  score: z.number(),
  user_id: z.number(),
  name: z.string(),
  /** HTML-escaped excerpt with `<mark>` around matches ("" with snippets off). */
  snippet: z.string(),
});
/** See {@link SearchHitSchema}. */
export type SearchHit = z.infer<typeof SearchHitSchema>;

/** The answer of `GET /v1/search` (the fields a caller needs; others pass through). */
export const SearchResultSchema = z.object({
  took_ms: z.number(),
  partial: z.boolean(),
  failed_shards: z.array(z.number()),
  total_shards: z.number(),
  from: z.number(),
  size: z.number(),
  hits: z.array(SearchHitSchema),
}).passthrough();
/** See {@link SearchResultSchema}. */
export type SearchResult = z.infer<typeof SearchResultSchema>;

const IndexedSchema = z.object({
  indexed: z.number(),
  shards: z.array(z.number()),
});
const DeletedSchema = z.object({ deleted: z.string() });

/** The answer of `GET /v1/users/:id/docs`. */
export const UserDocsSchema = z.object({
  user_id: z.number(),
  total: z.number(),
  partial: z.boolean(),
  failed_shards: z.array(z.number()),
  docs: z.array(z.object({
    id: z.string(),
    user_id: z.number(),
    name: z.string(),
    created: z.number(),
  })),
});
/** See {@link UserDocsSchema}. */
export type UserDocs = z.infer<typeof UserDocsSchema>;

/** The answer of `GET /v1/stats` (per-shard details pass through). */
export const ClusterStatusSchema = z.object({
  shards: z.array(
    z.object({ shard: z.number(), replicas: z.number(), up: z.boolean() })
      .passthrough(),
  ),
  replicas: z.array(z.array(z.object({ behind: z.number() }).passthrough())),
  catching_up: z.number(),
  repairs: z.number(),
  docs: z.number(),
  partial: z.boolean(),
});
/** See {@link ClusterStatusSchema}. */
export type ClusterStatus = z.infer<typeof ClusterStatusSchema>;

/** Options of {@link SearchClient}. */
export interface SearchClientOptions {
  /**
   * Bearer token (the cluster's `admin.token`, `write.token` or
   * `read.token`; see {@link readSearchToken}).
   */
  token?: string;
  /** Per-request timeout (ms, default 60 s). */
  timeoutMs?: number;
  /**
   * The fetch client to use: one that trusts the cluster's certificate
   * (`tlsClient(certFile)` from `@strata/edge`) for a cluster started with
   * `--tls-cert`.
   */
  httpClient?: Deno.HttpClient;
}

/** Options of {@link SearchClient.search}. */
export interface SearchOptions {
  /** Hits per page, 1..100 (default 10). */
  size?: number;
  /** Hits to skip (from + size ≤ 1000). */
  from?: number;
  /** Only this user's documents. */
  user?: number;
  /** How plain words combine (default "or"). */
  op?: "or" | "and";
  /** Build excerpts (default true). */
  snippets?: boolean;
}

/**
 * Calls one search coordinator (`deno task search` prints its URL).
 *
 * @example
 * ```ts
 * const search = new SearchClient("http://127.0.0.1:8080", { token: await readSearchToken() });
 * await search.index([{ id: "a1", user_id: 1, name: "hello", body: "a new document" }]);
 * const r = await search.search("new document", { size: 5 });
 * ```
 */
export class SearchClient {
  readonly #base: string;
  readonly #headers: Record<string, string>;
  readonly #timeoutMs: number;
  readonly #httpClient: Deno.HttpClient | undefined;

  /** @param url the coordinator's base URL, e.g. `http://127.0.0.1:8080` */
  constructor(url: string, options: SearchClientOptions = {}) {
    this.#base = url.replace(/\/+$/, "");
    this.#headers = authHeaders(options.token);
    this.#timeoutMs = options.timeoutMs ?? 60_000;
    this.#httpClient = options.httpClient;
  }

  async #call<S extends z.ZodType>(
    method: string,
    path: string,
    schema: S,
    body?: { type: string; text: string },
  ): Promise<z.infer<S>> {
    let res: Response;
    try {
      res = await fetch(this.#base + path, {
        method,
        headers: body
          ? { ...this.#headers, "content-type": body.type }
          : this.#headers,
        body: body?.text,
        signal: AbortSignal.timeout(this.#timeoutMs),
        ...(this.#httpClient ? { client: this.#httpClient } : {}),
      });
    } catch (e) {
      throw new SearchClientError(
        "unreachable",
        `${method} ${this.#base}${path}: ${
          e instanceof Error ? e.message : String(e)
        }`,
        0,
      );
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new SearchClientError(
        "bad_answer",
        `HTTP ${res.status} with a body that is not JSON: ${
          text.slice(0, 200)
        }`,
        res.status,
      );
    }
    if (!res.ok) {
      const e = ErrorBodySchema.safeParse(json);
      if (e.success) {
        throw new SearchClientError(
          e.data.error.code,
          e.data.error.message,
          res.status,
          e.data.error.details,
        );
      }
      throw new SearchClientError(
        "bad_answer",
        `HTTP ${res.status}: ${text.slice(0, 200)}`,
        res.status,
      );
    }
    const r = schema.safeParse(json);
    if (!r.success) {
      throw new SearchClientError(
        "bad_answer",
        `unexpected answer to ${method} ${path}: ${r.error.issues[0]?.message}`,
        res.status,
      );
    }
    return r.data;
  }

  /**
   * Indexes (adds or replaces) documents through `POST /v1/docs`, in bulk
   * requests of `batch` documents, one after another.
   * @returns documents acknowledged.
   * @throws SearchClientError on the first request that fails (earlier
   *   batches stay indexed).
   */
  async index(
    docs: Iterable<SearchDocument>,
    options: { batch?: number } = {},
  ): Promise<number> {
    const lines: string[] = [];
    for (const d of docs) lines.push(JSON.stringify(d));
    return await this.indexNdjsonLines(lines, options);
  }

  /**
   * {@link index} for documents already encoded as JSON lines (an NDJSON
   * file's non-empty lines), sent as they are: the server validates them
   * and names bad lines by number within their request.
   */
  async indexNdjsonLines(
    lines: readonly string[],
    options: { batch?: number } = {},
  ): Promise<number> {
    const batch = Math.max(1, options.batch ?? DEFAULT_BATCH);
    let indexed = 0;
    for (let i = 0; i < lines.length; i += batch) {
      const r = await this.#call("POST", "/v1/docs", IndexedSchema, {
        type: "application/x-ndjson",
        text: lines.slice(i, i + batch).join("\n"),
      });
      indexed += r.indexed;
    }
    return indexed;
  }

  /** Runs a query (the coordinator's syntax: words, "phrases", AND, -x, prefix*, name:, user:). */
  search(q: string, options: SearchOptions = {}): Promise<SearchResult> {
    const p = new URLSearchParams({ q });
    if (options.size !== undefined) p.set("size", String(options.size));
    if (options.from !== undefined) p.set("from", String(options.from));
    if (options.user !== undefined) p.set("user", String(options.user));
    if (options.op !== undefined) p.set("op", options.op);
    if (options.snippets !== undefined) {
      p.set("snippets", String(options.snippets));
    }
    return this.#call("GET", `/v1/search?${p}`, SearchResultSchema);
  }

  /** The stored document with this id, or null when there is none. */
  async get(id: string): Promise<StoredDocument | null> {
    try {
      return await this.#call(
        "GET",
        `/v1/docs/${encodeURIComponent(id)}`,
        StoredDocumentSchema,
      );
    } catch (e) {
      if (e instanceof SearchClientError && e.status === 404) return null;
      throw e;
    }
  }

  /** Deletes a document; false when there was none with this id. */
  async delete(id: string): Promise<boolean> {
    try {
      await this.#call(
        "DELETE",
        `/v1/docs/${encodeURIComponent(id)}`,
        DeletedSchema,
      );
      return true;
    } catch (e) {
      if (e instanceof SearchClientError && e.status === 404) return false;
      throw e;
    }
  }

  /** One user's documents, newest first. */
  userDocs(
    userId: number,
    options: { from?: number; size?: number } = {},
  ): Promise<UserDocs> {
    const p = new URLSearchParams();
    if (options.from !== undefined) p.set("from", String(options.from));
    if (options.size !== undefined) p.set("size", String(options.size));
    return this.#call("GET", `/v1/users/${userId}/docs?${p}`, UserDocsSchema);
  }

  /** Shards, replicas (up, behind), documents and repairs (`GET /v1/stats`). */
  status(): Promise<ClusterStatus> {
    return this.#call("GET", "/v1/stats", ClusterStatusSchema);
  }
}

/**
 * The token a search tool uses: `readToken` of @strata/edge (the given
 * token, else the file, else STRATA_TOKEN, else `<defaultDir>/admin.token`)
 * with `./data/search` (`deno task search --data ./data/search`) as the
 * default dir.
 * @throws Error when a named file cannot be read.
 */
export function readSearchToken(options: {
  token?: string;
  tokenFile?: string;
  defaultDir?: string;
} = {}): Promise<string | undefined> {
  return readToken({
    ...options,
    defaultDir: options.defaultDir ?? "./data/search",
  });
}
