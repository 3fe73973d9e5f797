import { Hono } from "hono";
import { z } from "zod";
import { TEXT_FIELDS } from "./document.ts";
import { snippet } from "./highlight.ts";
import { installErrorHandlers, readJson, validate } from "./http_errors.ts";
import type { ParsedQuery } from "./query_parser.ts";
import {
  type ShardSearchResult,
  ShardSearchSchema,
  ShardWriteSchema,
  StatsRequestSchema,
  type UserDocsResult,
} from "./shard_protocol.ts";
import type { ShardStore } from "./shard_store.ts";
import type { ShardHit } from "./searcher.ts";
import type { Analyzer } from "./analyzer.ts";

/** Largest internal request body (bytes). */
export const MAX_SHARD_BODY_BYTES = 64 << 20;

/** Identity of a shard server, for logs and /internal/describe. */
export interface ShardIdentity {
  shard: number;
  replica: number;
}

const UserParams = z.object({
  id: z.coerce.number().int().min(0),
  from: z.coerce.number().int().min(0).max(100_000).default(0),
  size: z.coerce.number().int().min(0).max(1000).default(20),
});

/** Marks the query's terms in a hit's body (or name when the body has none). */
export function hitSnippet(
  hit: ShardHit,
  query: ParsedQuery,
  analyzer: Analyzer,
): string {
  const terms = new Set<string>();
  const prefixes: string[] = [];
  for (const c of [...query.must, ...query.should]) {
    if (c.kind === "term") terms.add(c.term);
    else if (c.kind === "phrase") c.terms.forEach((t) => terms.add(t));
    else prefixes.push(c.prefix);
  }
  const body = hit.segment.bodies[hit.doc]!;
  const s = snippet(body, terms, prefixes, analyzer);
  return s.includes("<mark>") || body.length === 0
    ? s || snippet(hit.segment.names[hit.doc]!, terms, prefixes, analyzer)
    : s;
}

/**
 * The HTTP face of one shard replica (internal API, called by the
 * coordinator): writes, statistics (DFS phase), top-k search with the
 * global statistics, user listings, description. Every body is validated
 * with zod; errors are JSON.
 */
export function createShardApp(store: ShardStore, id: ShardIdentity): Hono {
  const app = new Hono();
  installErrorHandlers(app);
  let inflight = 0;
  let refreshTimer: ReturnType<typeof setTimeout> | undefined;
  app.use("*", async (_c, next) => {
    inflight++;
    try {
      await next();
    } finally {
      inflight--;
    }
  });
  app.get("/health", (c) => c.json({ ok: true, ...id, inflight }));
  app.post("/internal/write", async (c) => {
    const w = validate(
      ShardWriteSchema,
      await readJson(c, MAX_SHARD_BODY_BYTES),
      "write",
    );
    const r = await store.write({ add: w.add, delete: w.delete });
    // Near-real-time: index the new documents into a segment soon, off the
    // query path (a query arriving first refreshes by itself).
    refreshTimer ??= setTimeout(() => {
      refreshTimer = undefined;
      store.refresh().catch(() => {});
    }, 100);
    return c.json(r);
  });
  app.post("/internal/stats", async (c) => {
    const req = validate(
      StatsRequestSchema,
      await readJson(c, MAX_SHARD_BODY_BYTES),
      "stats request",
    );
    return c.json(store.index.stats(req));
  });
  app.post("/internal/search", async (c) => {
    const req = validate(
      ShardSearchSchema,
      await readJson(c, MAX_SHARD_BODY_BYTES),
      "search request",
    );
    const t0 = performance.now();
    const r = store.index.search(req.query, req.k, req.context);
    const out: ShardSearchResult = {
      hits: r.hits.map((h) => ({
        id: h.id,
        score: h.score,
        user_id: h.segment.users[h.doc]!,
        name: h.segment.names[h.doc]!,
        created: h.segment.created[h.doc]!,
        snippet: hitSnippet(h, req.query, store.index.analyzer),
      })),
      scored: r.scored,
      strategy: r.strategy,
      tookMs: performance.now() - t0,
    };
    return c.json(out);
  });
  app.get("/internal/users/:id", (c) => {
    const p = validate(
      UserParams,
      { id: c.req.param("id"), ...c.req.query() },
      "user listing",
    );
    const r = store.index.userDocs(p.id, 0, p.from + p.size);
    const out: UserDocsResult = {
      total: r.total,
      docs: r.docs.map((d) => ({
        id: d.id,
        user_id: d.user_id,
        name: d.name,
        created: d.created,
      })),
    };
    return c.json(out);
  });
  // Every live document, by id, page by page (replica comparison).
  app.get("/internal/docs", (c) => {
    const p = validate(
      z.object({
        after: z.string().max(256).default(""),
        size: z.coerce.number().int().min(1).max(10_000).default(1000),
      }),
      c.req.query(),
      "document listing",
    );
    return c.json({ docs: store.index.documentsAfter(p.after, p.size) });
  });
  app.get("/internal/describe", (c) =>
    c.json({
      ...id,
      ...store.index.describe(),
      fields: TEXT_FIELDS,
      flushes: store.flushes,
      merges: store.merges,
      recovery: store.recovery,
      inflight,
    }));
  return app;
}
