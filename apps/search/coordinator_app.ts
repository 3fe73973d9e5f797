import { Hono } from "hono";
import { HttpPool, type PoolResponse } from "./http_pool.ts";
import { z } from "zod";
import { Analyzer } from "./analyzer.ts";
import { DocumentSchema, type StoredDocument } from "./document.ts";
import {
  mergeShardStats,
  type ScoringContext,
  type ShardStats,
  ShardStatsSchema,
  type StatsRequest,
  statsRequestFor,
} from "./global_stats.ts";
import { compareHits } from "./hit_order.ts";
import {
  authHeaders,
  EdgeError,
  installErrorHandlers,
  NDJSON_CONTENT_TYPES,
  parseWith,
  queryParams,
  readNdjson,
  readQuery,
} from "@strata/edge";
import { need, type SearchAccess, searchGuard } from "./search_access.ts";
import { searchErrorToEdge } from "./http_error_map.ts";
import { HintedHandoff } from "./hinted_handoff.ts";
import type { BehindStore } from "./behind_marks.ts";
import { kwayMerge } from "./kway_merge.ts";
import { parseQuery } from "./query_parser.ts";
import { pruneQuery } from "./query_pruning.ts";
import { ReplicaSelector } from "./replica_selector.ts";
import { SearchError } from "./search_error.ts";
import { compareNewest } from "./shard_index.ts";
import {
  RESULT_HEADER,
  type ShardSearch,
  ShardSearchResultSchema,
  type ShardWrite,
  type UserDoc,
  UserDocsResultSchema,
  type WireHit,
} from "./shard_protocol.ts";
import { shardOf } from "./shard_routing.ts";
import { WriteCoalescer } from "./write_coalescer.ts";

const UTF8 = new TextEncoder();

/** Most hits per page. */
export const MAX_PAGE_SIZE = 100;
/** Deepest result reachable with from + size (as Elasticsearch's max_result_window). */
export const MAX_RESULT_WINDOW = 1000;
/** Largest `POST /v1/docs` body (bytes). */
export const MAX_BULK_BYTES = 32 << 20;
/** Most documents in one bulk request. */
export const MAX_BULK_DOCS = 50_000;

/** The query string of `GET /v1/search` (checked further by the route, with its own messages). */
const SearchQuerySchema = z.object({
  q: z.string().optional(),
  size: z.string().optional(),
  from: z.string().optional(),
  op: z.string().optional(),
  snippets: z.string().optional(),
  user: z.string().optional(),
});

/** Coordinator configuration. */
export const CoordinatorConfigSchema = z.object({
  /** Base URLs of each shard's replicas: shards[s][r]. */
  shards: z.array(z.array(z.string().url()).min(1).max(16)).min(1).max(1024),
  /** Replicas that must confirm a write before it is acknowledged (default: all). */
  ack: z.number().int().min(1).max(16).optional(),
  /** Per-attempt timeout of a query phase call to one replica (ms). */
  searchTimeoutMs: z.number().int().min(10).max(600_000).default(5000),
  /** Timeout of a write to one replica (ms). */
  writeTimeoutMs: z.number().int().min(10).max(600_000).default(60_000),
  /**
   * Most documents (adds + deletes) queued for one replica that missed
   * writes; beyond it the replica stays out of reads and the surplus is
   * refused (the write still succeeds on the other replicas).
   */
  maxQueuedDocs: z.number().int().min(1).max(10_000_000).default(1_000_000),
  /** How long gathered term statistics are reused without a write in between (ms). */
  statsTtlMs: z.number().int().min(0).max(3_600_000).default(30_000),
});
/** See {@link CoordinatorConfigSchema}. */
export type CoordinatorConfig = z.input<typeof CoordinatorConfigSchema>;

const DocsPageSchema = z.object({
  docs: z.array(DocumentSchema.extend({ created: z.number() })),
});

const DocAnswerSchema = z.object({
  doc: DocumentSchema.extend({ created: z.number() }).nullable(),
});

const UserParams = z.object({
  id: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  from: z.coerce.number().int().min(0).max(MAX_RESULT_WINDOW).default(0),
  size: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).default(20),
});

interface Metrics {
  requests: Map<string, number>;
  searchMs: number[];
  searches: number;
  partial: number;
  retries: number;
  docsIndexed: number;
  statsCacheHits: number;
  statsCacheMisses: number;
}

function round2(ms: number): number {
  return Math.round(ms * 100) / 100;
}

/** Parses `size`/`from` with messages that say what the limits are. */
function pageParam(
  raw: string | undefined,
  name: "size" | "from",
  def: number,
  min: number,
  max: number,
): number {
  if (raw === undefined || raw === "") return def;
  if (!/^\d{1,9}$/.test(raw)) {
    throw new SearchError(
      "bad_request",
      `${name} must be a whole number, got "${raw.slice(0, 40)}"`,
    );
  }
  const n = Number(raw);
  if (n < min || n > max) {
    throw new SearchError(
      "bad_request",
      name === "size"
        ? `size must be between ${min} and ${max} (got ${n}): pages are capped at ${MAX_PAGE_SIZE} hits`
        : `from must be between 0 and ${max} (got ${n}): from + size is capped at ${MAX_RESULT_WINDOW}`,
    );
  }
  return n;
}

/**
 * Content types `POST /v1/docs` accepts (besides none): NDJSON and JSON.
 * Not text/plain or a form (what curl's `--data-binary` sends by default):
 * a web page may send those to any site, so the edge guard refuses them
 * on every POST (415) before this route runs.
 */
export const BULK_CONTENT_TYPES: readonly string[] = NDJSON_CONTENT_TYPES;

/**
 * The public search API in front of the shard processes:
 * `POST /v1/docs` (NDJSON bulk), `DELETE /v1/docs/:id`,
 * `GET /v1/search?q=&size=&from=&user=&op=`, `GET /v1/users/:id/docs`,
 * `GET /v1/stats`, `GET /metrics`. Writes go to every replica of the
 * document's shard (hash of the id) and are acknowledged after `ack`
 * replicas confirm. Queries gather term statistics from every shard (cached
 * until the next write), send the query with the global statistics to one
 * replica per shard chosen by adaptive replica selection (another replica
 * on failure or timeout), and k-way merge the shards' top hits; when every
 * replica of a shard is down the answer is `partial: true` and names it.
 */
export function createCoordinatorApp(
  input: CoordinatorConfig,
  access: SearchAccess,
  /**
   * Where the replicas that are behind are recorded (durable hinted
   * handoff); without it a restarted coordinator forgets them.
   */
  marks?: BehindStore,
): {
  app: Hono;
  selector: ReplicaSelector;
  /** Stops replaying missed writes and closes the persistent connections to the shards. */
  close: () => Promise<void>;
} {
  const config = CoordinatorConfigSchema.parse(input);
  // The shards' internal routes take the cluster's peer secret only.
  const peerToken = access.secrets?.peerSecret;
  const peerAuth = authHeaders(peerToken);
  // Shards serving TLS: the roots their certificates chain to.
  const caCerts = access.tls?.caCerts;
  const client = caCerts ? Deno.createHttpClient({ caCerts }) : undefined;
  const S = config.shards.length;
  const selector = new ReplicaSelector(config.shards.map((r) => r.length));
  const handoff = new HintedHandoff(
    config.shards,
    {
      send: (base, body) =>
        post(
          `${base}/internal/write`,
          JSON.stringify(body),
          config.writeTimeoutMs,
        ),
      list: async (base, after, size) =>
        DocsPageSchema.parse(
          await get(
            base,
            `/internal/docs?size=${size}&after=${encodeURIComponent(after)}`,
            config.writeTimeoutMs,
          ),
        ).docs,
    },
    config.maxQueuedDocs,
    {
      behind: marks?.initial,
      // Not awaited: a stale record only causes an extra repair later.
      onCaughtUp: () => void saveMarks().catch(() => {}),
    },
  );
  /** Records the replicas that are behind now (a no-op without a store or a change). */
  function saveMarks(): Promise<void> {
    return marks ? marks.save(handoff.behindList()) : Promise.resolve();
  }
  const analyzer = new Analyzer();
  const metrics: Metrics = {
    requests: new Map(),
    searchMs: [],
    searches: 0,
    partial: 0,
    retries: 0,
    docsIndexed: 0,
    statsCacheHits: 0,
    statsCacheMisses: 0,
  };
  let writeGeneration = 0;
  const statsCache = new Map<
    string,
    {
      gen: number;
      at: number;
      perShard: Array<ShardStats | null>;
      context: ScoringContext;
    }
  >();
  let lastCreated = 0;

  function post(
    url: string,
    encoded: string | Uint8Array<ArrayBuffer>,
    timeoutMs: number,
  ): Promise<unknown> {
    return postTyped(url, encoded, "application/json", timeoutMs);
  }

  async function postTyped(
    url: string,
    encoded: string | Uint8Array<ArrayBuffer>,
    type: string,
    timeoutMs = config.writeTimeoutMs,
  ): Promise<unknown> {
    const res = await fetch(url, {
      method: "POST",
      headers: { ...peerAuth, "content-type": type },
      client,
      body: encoded,
      signal: AbortSignal.timeout(timeoutMs),
    });
    const json = await res.json();
    if (!res.ok) {
      throw new Error(
        `HTTP ${res.status}: ${JSON.stringify(json).slice(0, 200)}`,
      );
    }
    return json;
  }
  /** `/internal/build`: the write's log record (binary) and its `{added, deleted}`. */
  async function postBuild(
    url: string,
    json: Uint8Array<ArrayBuffer>,
  ): Promise<{ record: Uint8Array<ArrayBuffer>; result: unknown }> {
    const res = await fetch(url, {
      method: "POST",
      headers: { ...peerAuth, "content-type": "application/json" },
      client,
      body: json,
      signal: AbortSignal.timeout(config.writeTimeoutMs),
    });
    if (!res.ok) {
      throw new Error(
        `HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`,
      );
    }
    const result = JSON.parse(res.headers.get(RESULT_HEADER) ?? "{}");
    return { record: new Uint8Array(await res.arrayBuffer()), result };
  }

  /** `/internal/apply`: a log record another replica built. */
  function postRecord(
    url: string,
    record: Uint8Array<ArrayBuffer>,
  ): Promise<unknown> {
    return postTyped(url, record, "application/octet-stream");
  }

  // Reads (statistics, searches, listings) go over persistent connections
  // (http_pool.ts): fetch's per-call machinery was most of the
  // coordinator's CPU under query load. Writes keep fetch.
  const pools = new Map<string, HttpPool>();
  function poolOf(base: string): HttpPool {
    let p = pools.get(base);
    if (p === undefined) {
      pools.set(base, p = new HttpPool(base, undefined, peerToken, caCerts));
    }
    return p;
  }
  function answer(r: PoolResponse): unknown {
    // Status first: a proxy's or a crashing shard's error page is not JSON.
    if (r.status < 200 || r.status > 299) {
      throw new Error(`HTTP ${r.status}: ${r.text.slice(0, 200)}`);
    }
    return JSON.parse(r.text);
  }
  async function readEncoded(
    base: string,
    path: string,
    json: string,
    timeoutMs: number,
  ): Promise<unknown> {
    return answer(await poolOf(base).post(path, json, timeoutMs));
  }
  async function get(
    base: string,
    path: string,
    timeoutMs: number,
  ): Promise<unknown> {
    return answer(await poolOf(base).get(path, timeoutMs));
  }

  /** Calls one replica of `shard` at a time, best first, until one answers; null when none does. */
  async function readShard<T>(
    shard: number,
    call: (base: string) => Promise<unknown>,
    schema: z.ZodType<T>,
    answered?: (replica: number) => void,
  ): Promise<T | null> {
    // A replica that missed writes answers no reads until it has caught
    // up (unless every replica of the shard did).
    const all = selector.order(shard, Date.now());
    const current = all.filter((r) => !handoff.isBehind(shard, r));
    const order = current.length > 0 ? current : all;
    for (let i = 0; i < order.length; i++) {
      const r = order[i]!;
      if (i > 0) metrics.retries++;
      const t0 = performance.now();
      selector.started(shard, r);
      try {
        const out = schema.parse(await call(config.shards[shard]![r]!));
        selector.succeeded(shard, r, performance.now() - t0);
        answered?.(r);
        return out;
      } catch {
        selector.failed(shard, r, Date.now());
      }
    }
    return null;
  }

  async function gatherStats(
    req: StatsRequest,
  ): Promise<{ perShard: Array<ShardStats | null>; context: ScoringContext }> {
    // The encoded request is the cache key and the body sent to every shard.
    const key = JSON.stringify(req);
    const hit = statsCache.get(key);
    if (
      hit && hit.gen === writeGeneration &&
      Date.now() - hit.at < config.statsTtlMs &&
      hit.perShard.every((s) => s !== null)
    ) {
      metrics.statsCacheHits++;
      return hit;
    }
    metrics.statsCacheMisses++;
    const perShard = await Promise.all(
      config.shards.map((_, s) =>
        readShard(
          s,
          (base) =>
            readEncoded(base, "/internal/stats", key, config.searchTimeoutMs),
          ShardStatsSchema,
        )
      ),
    );
    // The merged context is cached with the per-shard statistics: merging
    // on every query showed in the coordinator's profile.
    const context = mergeShardStats(
      perShard.filter((s): s is ShardStats => s !== null),
    );
    const entry = { gen: writeGeneration, at: Date.now(), perShard, context };
    if (statsCache.size >= 10_000) statsCache.clear();
    statsCache.set(key, entry);
    return entry;
  }

  async function writeShard(
    shard: number,
    body: ShardWrite,
  ): Promise<{ ok: boolean; deleted: number }> {
    const token = handoff.beginWrite(shard);
    try {
      return await writeReplicas(shard, body);
    } finally {
      handoff.endWrite(shard, token);
    }
  }

  async function writeReplicas(
    shard: number,
    body: ShardWrite,
  ): Promise<{ ok: boolean; deleted: number }> {
    const replicas = config.shards[shard]!;
    const need = Math.min(config.ack ?? replicas.length, replicas.length);
    // Encoded once for every replica (to bytes: fetch would encode a
    // string body again for each).
    const json = UTF8.encode(JSON.stringify(body));
    // Segment replication: with documents to add and two or more replicas
    // up, the first one analyses them into a segment and answers its log
    // record, which the others apply as is (analysis is most of a
    // replica's indexing CPU). If that replica fails, the others get the
    // documents and analyse them themselves.
    const up = replicas.flatMap((_, r) =>
      handoff.isBehind(shard, r) ? [] : [r]
    );
    const builder = body.add.length > 0 && up.length > 1 ? up[0]! : -1;
    const built = builder < 0
      ? null
      : postBuild(`${replicas[builder]}/internal/build`, json);
    // Settled here; each replica's call below reports the outcome.
    built?.catch(() => {});
    const results = await Promise.allSettled(
      replicas.map((base, r) =>
        handoff.isBehind(shard, r)
          // Behind: the write joins its queue, after the writes it missed
          // (it does not count as this replica's confirmation).
          ? handoff.enqueueBehind(shard, r, body)
          : (built === null
            ? post(`${base}/internal/write`, json, config.writeTimeoutMs)
            : r === builder
            ? built.then((b) => b.result)
            : built.then(
              (b) => postRecord(`${base}/internal/apply`, b.record),
              () => post(`${base}/internal/write`, json, config.writeTimeoutMs),
            ))
            .catch((e) => {
              // Missed (down, refused or timed out): replay it later, in order.
              handoff.enqueue(shard, r, body);
              throw e;
            })
      ),
    );
    const ok = results.filter((r) => r.status === "fulfilled");
    replicas.forEach((_, r) => {
      if (!handoff.isBehind(shard, r)) return;
      // Replayed to the replicas that missed it once another has it; when
      // no replica has it, the write failed (503) and is not replayed.
      if (ok.length > 0) handoff.kick(shard, r);
      else handoff.retract(shard, r, body);
    });
    // A write a replica missed is acknowledged only once the record of
    // replicas behind is on disk: a coordinator restarted after the
    // acknowledgement repairs that replica (its queue was in memory).
    if (ok.length > 0 && replicas.some((_, r) => handoff.isBehind(shard, r))) {
      try {
        await saveMarks();
      } catch (e) {
        console.error(
          `search-coordinator: cannot record the replicas behind: ${
            e instanceof Error ? e.message : e
          }`,
        );
        return { ok: false, deleted: 0 };
      }
    }
    const deleted = Math.max(
      0,
      ...ok.map((r) =>
        Number(
          (r as PromiseFulfilledResult<{ deleted?: number }>).value.deleted ??
            0,
        )
      ),
    );
    return { ok: ok.length >= need, deleted };
  }

  // Bulk adds to a busy shard wait and go together (group commit): bigger
  // segments, fewer log records, fsyncs, exchanges and merges.
  const bulkWrites = new WriteCoalescer(
    S,
    (s, add) => writeShard(s, { add, delete: [] }),
  );

  const app = new Hono();
  installErrorHandlers(app, {
    name: "search-coordinator",
    map: searchErrorToEdge,
  });
  app.use("*", searchGuard(access));
  app.use("*", async (c, next) => {
    await next();
    const key = `${c.req.method} ${c.req.routePath} ${c.res.status}`;
    metrics.requests.set(key, (metrics.requests.get(key) ?? 0) + 1);
  });

  app.post("/v1/docs", need.write, async (c) => {
    const parsed = await readNdjson(c, DocumentSchema, {
      maxBytes: MAX_BULK_BYTES,
      contentTypes: BULK_CONTENT_TYPES,
      acceptMissingType: true,
      invalidCode: "bad_document",
    });
    const docs: StoredDocument[] = parsed.map((d) => ({
      ...d,
      created: d.created ??
        (lastCreated = Math.max(Date.now(), lastCreated + 0.001)),
    }));
    if (docs.length === 0) {
      throw new SearchError(
        "bad_request",
        "the body has no documents; send one JSON document per line (NDJSON)",
      );
    }
    if (docs.length > MAX_BULK_DOCS) {
      throw new SearchError(
        "too_large",
        `${docs.length} documents in one request; at most ${MAX_BULK_DOCS}`,
      );
    }
    const byShard: StoredDocument[][] = Array.from({ length: S }, () => []);
    for (const d of docs) byShard[shardOf(d.id, S)]!.push(d);
    writeGeneration++;
    const results = await Promise.all(
      byShard.map((add, s) =>
        add.length === 0
          ? Promise.resolve({ ok: true, deleted: 0 })
          : bulkWrites.write(s, add)
      ),
    );
    writeGeneration++;
    const failed = results.flatMap((r, s) => (r.ok ? [] : [s]));
    if (failed.length > 0) {
      const indexed = byShard.reduce(
        (n, l, s) => n + (failed.includes(s) ? 0 : l.length),
        0,
      );
      throw new EdgeError(
        "unavailable",
        `shard(s) ${
          failed.join(", ")
        } did not confirm the write on enough replicas; ${indexed} of ${docs.length} documents were acknowledged`,
        { details: { failed_shards: failed, indexed } },
      );
    }
    metrics.docsIndexed += docs.length;
    return c.json({
      indexed: docs.length,
      shards: byShard.map((l) => l.length),
    });
  });

  app.get("/v1/docs/:id", need.read, async (c) => {
    const id = parseWith(
      DocumentSchema.shape.id,
      c.req.param("id"),
      "document id",
    );
    const s = shardOf(id, S);
    const r = await readShard(
      s,
      (base) =>
        get(
          base,
          `/internal/doc/${encodeURIComponent(id)}`,
          config.searchTimeoutMs,
        ),
      DocAnswerSchema,
    );
    if (r === null) {
      throw new EdgeError(
        "unavailable",
        `no replica of shard ${s} answered`,
        { details: { failed_shards: [s] } },
      );
    }
    if (r.doc === null) {
      throw new SearchError("not_found", `no document with id ${id}`);
    }
    return c.json(r.doc);
  });

  app.delete("/v1/docs/:id", need.write, async (c) => {
    const id = parseWith(
      DocumentSchema.shape.id,
      c.req.param("id"),
      "document id",
    );
    const s = shardOf(id, S);
    writeGeneration++;
    const r = await writeShard(s, { add: [], delete: [id] });
    writeGeneration++;
    if (!r.ok) {
      throw new EdgeError(
        "unavailable",
        `shard ${s} did not confirm the delete on enough replicas`,
        { details: { failed_shards: [s] } },
      );
    }
    if (r.deleted === 0) {
      throw new SearchError("not_found", `no document with id ${id}`);
    }
    return c.json({ deleted: id });
  });

  app.get("/v1/search", need.read, async (c) => {
    const t0 = performance.now();
    const qs = readQuery(c, SearchQuerySchema);
    const q = qs.q;
    if (q === undefined) {
      throw new SearchError("bad_query", "the query is empty; pass q=<words>");
    }
    const size = pageParam(qs.size, "size", 10, 1, MAX_PAGE_SIZE);
    const from = pageParam(
      qs.from,
      "from",
      0,
      0,
      MAX_RESULT_WINDOW - size,
    );
    const op = qs.op ?? "or";
    if (op !== "or" && op !== "and") {
      throw new SearchError(
        "bad_request",
        `op must be "or" or "and", got "${op.slice(0, 20)}"`,
      );
    }
    const snippetsRaw = qs.snippets ?? "true";
    if (!["true", "false", "1", "0"].includes(snippetsRaw)) {
      throw new SearchError(
        "bad_request",
        `snippets must be true or false, got "${snippetsRaw.slice(0, 20)}"`,
      );
    }
    const snippets = snippetsRaw === "true" || snippetsRaw === "1";
    const query = parseQuery(q, analyzer, { defaultOperator: op });
    const userRaw = qs.user;
    if (userRaw !== undefined && userRaw !== "") {
      const user = parseWith(UserParams.shape.id, userRaw, "user");
      if (query.user !== null && query.user !== user) {
        throw new SearchError(
          "bad_query",
          "user= and user: in the query name different users",
        );
      }
      query.user = user;
    }
    const { perShard: perShardStats, context: full } = await gatherStats(
      statsRequestFor(query),
    );
    // A long natural-language query is scored with its most informative
    // words only (chosen once, with the global statistics, so every shard
    // scores the same query); shards get the statistics of those words.
    const scoredQuery = pruneQuery(query, full.stats);
    const keep = new Set(statsRequestFor(scoredQuery).keys);
    const context = scoredQuery === query ? full : {
      ...full,
      stats: {
        ...full.stats,
        df: Object.fromEntries(
          Object.entries(full.stats.df).filter(([k]) => keep.has(k)),
        ),
      },
    };
    const body: ShardSearch = {
      query: scoredQuery,
      k: from + size,
      context,
      snippets,
    };
    // Encoded once for every shard.
    const bodyJson = JSON.stringify(body);
    // Per-shard timing of the query phase (retries included), for callers
    // that show where a search spends its time.
    const fanOutStart = performance.now();
    const timings = config.shards.map((_, shard) => ({
      shard,
      replica: null as number | null,
      ms: 0,
      hits: 0,
      /** The shard's own time: scoring, and building snippets. */
      search_ms: 0,
      snippet_ms: 0,
    }));
    const results = await Promise.all(
      config.shards.map((_, s) =>
        perShardStats[s] === null ? Promise.resolve(null) : readShard(
          s,
          (base) =>
            readEncoded(
              base,
              "/internal/search",
              bodyJson,
              config.searchTimeoutMs,
            ),
          ShardSearchResultSchema,
          (r) => (timings[s]!.replica = r),
        ).then((out) => {
          timings[s]!.ms = round2(performance.now() - fanOutStart);
          timings[s]!.hits = out?.hits.length ?? 0;
          if (out) {
            timings[s]!.snippet_ms = round2(out.snippetMs);
            timings[s]!.search_ms = round2(out.tookMs - out.snippetMs);
          }
          return out;
        })
      ),
    );
    const failed = results.flatMap((r, s) => (r === null ? [s] : []));
    const lists = results.map((r) => r?.hits ?? []);
    const mergeStart = performance.now();
    const merged = kwayMerge<WireHit>(lists, compareHits, from + size).slice(
      from,
    );
    const mergeMs = performance.now() - mergeStart;
    const took = performance.now() - t0;
    metrics.searches++;
    metrics.searchMs.push(took);
    if (metrics.searchMs.length > 10_000) metrics.searchMs.splice(0, 5_000);
    if (failed.length > 0) metrics.partial++;
    return c.json({
      took_ms: Math.round(took * 100) / 100,
      partial: failed.length > 0,
      failed_shards: failed,
      total_shards: S,
      from,
      size,
      scored: results.reduce((n, r) => n + (r?.scored ?? 0), 0),
      shards: timings,
      merge_ms: round2(mergeMs),
      hits: merged.map((h) => ({
        id: h.id,
        score: h.score,
        user_id: h.user_id,
        name: h.name,
        snippet: h.snippet,
      })),
    });
  });

  app.get("/v1/users/:id/docs", need.read, async (c) => {
    const p = parseWith(
      UserParams,
      { id: c.req.param("id"), ...queryParams(c) },
      "user listing",
    );
    const results = await Promise.all(
      config.shards.map((_, s) =>
        readShard(
          s,
          (base) =>
            get(
              base,
              `/internal/users/${p.id}?from=0&size=${p.from + p.size}`,
              config.searchTimeoutMs,
            ),
          UserDocsResultSchema,
        )
      ),
    );
    const failed = results.flatMap((r, s) => (r === null ? [s] : []));
    const byNewest = (a: UserDoc, b: UserDoc) =>
      compareNewest(a as StoredDocument, b as StoredDocument);
    const docs = kwayMerge(
      results.map((r) => r?.docs ?? []),
      byNewest,
      p.from + p.size,
    ).slice(p.from);
    return c.json({
      user_id: p.id,
      total: results.reduce((n, r) => n + (r?.total ?? 0), 0),
      partial: failed.length > 0,
      failed_shards: failed,
      docs,
    });
  });

  app.get("/v1/stats", need.read, async (c) => {
    const shards = await Promise.all(
      config.shards.map((_, s) =>
        readShard(
          s,
          (base) => get(base, "/internal/describe", config.searchTimeoutMs),
          z.record(z.string(), z.unknown()),
        )
      ),
    );
    return c.json({
      shards: shards.map((d, s) => ({
        shard: s,
        replicas: config.shards[s]!.length,
        up: d !== null,
        ...(d ?? {}),
      })),
      replicas: selector.describe().map((reps, s) =>
        reps.map((r, i) => ({ ...r, behind: handoff.queued(s, i) }))
      ),
      catching_up: handoff.behindCount(),
      repairs: handoff.repairs,
      docs: shards.reduce((n, d) => n + Number(d?.docs ?? 0), 0),
      partial: shards.some((d) => d === null),
    });
  });

  app.get("/metrics", need.read, (c) => {
    const lines: string[] = [];
    lines.push("# TYPE search_requests_total counter");
    for (const [k, n] of metrics.requests) {
      const [method, route, status] = k.split(" ");
      lines.push(
        `search_requests_total{method="${method}",route="${route}",status="${status}"} ${n}`,
      );
    }
    const sorted = [...metrics.searchMs].sort((a, b) => a - b);
    const q = (p: number) =>
      sorted.length
        ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!
        : 0;
    lines.push("# TYPE search_query_latency_ms summary");
    lines.push(`search_query_latency_ms{quantile="0.5"} ${q(0.5).toFixed(3)}`);
    lines.push(
      `search_query_latency_ms{quantile="0.99"} ${q(0.99).toFixed(3)}`,
    );
    lines.push(`search_query_latency_ms_count ${metrics.searches}`);
    lines.push(
      `# TYPE search_partial_responses_total counter`,
      `search_partial_responses_total ${metrics.partial}`,
    );
    lines.push(
      `# TYPE search_replica_retries_total counter`,
      `search_replica_retries_total ${metrics.retries}`,
      `# TYPE search_shard_connections_opened_total counter`,
      `search_shard_connections_opened_total ${
        [...pools.values()].reduce((n, p) => n + p.opened, 0)
      }`,
    );
    lines.push(
      `# TYPE search_docs_indexed_total counter`,
      `search_docs_indexed_total ${metrics.docsIndexed}`,
    );
    lines.push(
      `# TYPE search_stats_cache_hits_total counter`,
      `search_stats_cache_hits_total ${metrics.statsCacheHits}`,
    );
    lines.push(
      `# TYPE search_stats_cache_misses_total counter`,
      `search_stats_cache_misses_total ${metrics.statsCacheMisses}`,
    );
    lines.push("# TYPE search_replica_behind_docs gauge");
    config.shards.forEach((reps, s) =>
      reps.forEach((_, i) =>
        lines.push(
          `search_replica_behind_docs{shard="${s}",replica="${i}"} ${
            handoff.queued(s, i)
          }`,
        )
      )
    );
    lines.push("# TYPE search_replica_ewma_ms gauge");
    selector.describe().forEach((reps, s) =>
      reps.forEach((r, i) => {
        lines.push(
          `search_replica_ewma_ms{shard="${s}",replica="${i}"} ${
            r.ewmaMs.toFixed(3)
          }`,
        );
        lines.push(
          `search_replica_up{shard="${s}",replica="${i}"} ${r.down ? 0 : 1}`,
        );
      })
    );
    return c.text(lines.join("\n") + "\n", 200, {
      "content-type": "text/plain; version=0.0.4",
    });
  });

  const close = async () => {
    await handoff.close();
    for (const p of pools.values()) p.close();
    client?.close();
    pools.clear();
  };
  return { app, selector, close };
}
