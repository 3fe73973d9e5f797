import { Hono } from "hono";
import { z } from "zod";
import { DocumentSchema, TEXT_FIELDS } from "./document.ts";
import { snippetAt } from "./highlight.ts";
import { statKey } from "./bm25.ts";
import type { ScoringContext } from "./global_stats.ts";
import type { Segment } from "./segment.ts";
import { NO_MORE_DOCS } from "./postings.ts";
import {
  installErrorHandlers,
  parseWith,
  queryParams,
  readBytes,
  readJson,
  readQuery,
} from "@strata/edge";
import { need, type SearchAccess, searchGuard } from "./search_access.ts";
import { searchErrorToEdge } from "./http_error_map.ts";
import { SearchError } from "./search_error.ts";
import type { ParsedQuery } from "./query_parser.ts";
import {
  RESULT_HEADER,
  type ShardSearchResult,
  ShardSearchSchema,
  ShardWriteSchema,
  StatsRequestSchema,
  type UserDocsResult,
} from "./shard_protocol.ts";
import type { ShardStore } from "./shard_store.ts";
import type { ShardHit } from "./searcher.ts";

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

/**
 * Token positions in field number `field` of `doc` of every term in
 * `terms`, sorted and distinct, read from the segment's postings.
 */
export function termPositions(
  segment: Segment,
  field: number,
  terms: Iterable<string>,
  doc: number,
): number[] {
  const out: number[] = [];
  let lists = 0;
  for (const t of terms) {
    const c = segment.cursor(field, t);
    if (c === null || c.advance(doc) !== doc) continue;
    for (const p of c.positions()) out.push(p);
    lists++;
  }
  if (lists > 1) sortDistinct(out);
  return out;
}

/** The index terms each field's snippet marks: the query's words, phrase words and prefix expansions. */
export function snippetTerms(
  query: ParsedQuery,
  context: ScoringContext,
): Array<Set<string>> {
  const out = TEXT_FIELDS.map(() => new Set<string>());
  for (const c of [...query.must, ...query.should]) {
    for (const field of c.fields) {
      const set = out[TEXT_FIELDS.indexOf(field)]!;
      if (c.kind === "term") set.add(c.term);
      else if (c.kind === "phrase") c.terms.forEach((t) => set.add(t));
      else {
        for (const t of context.expansions[statKey(field, c.prefix)] ?? []) {
          set.add(t);
        }
      }
    }
  }
  return out;
}

const NAME = TEXT_FIELDS.indexOf("name");
const BODY = TEXT_FIELDS.indexOf("body");

/**
 * Marks the query's terms in a hit's body (or its name when the body has
 * no words). The matching positions come from the postings and the scan
 * starts at the stored offset before them, so the cost is a few postings
 * lookups and about 40 tokens, however long the body is.
 */
export function hitSnippet(
  hit: ShardHit,
  terms: ReadonlyArray<ReadonlySet<string>>,
): string {
  return hitSnippets([hit], terms)[0]!;
}

/**
 * {@link hitSnippet} for several hits at once: per segment, one cursor per
 * term walks the hits in doc order instead of one cursor per (hit, term).
 */
export function hitSnippets(
  hits: readonly ShardHit[],
  terms: ReadonlyArray<ReadonlySet<string>>,
): string[] {
  const out = new Array<string>(hits.length);
  const bySegment = new Map<Segment, number[]>();
  hits.forEach((h, i) => {
    let l = bySegment.get(h.segment);
    if (l === undefined) bySegment.set(h.segment, l = []);
    l.push(i);
  });
  for (const [seg, idx] of bySegment) {
    idx.sort((a, b) => hits[a]!.doc - hits[b]!.doc);
    const docs = idx.map((i) => hits[i]!.doc);
    const body = positionsByDoc(seg, BODY, terms[BODY]!, docs);
    idx.forEach((i, j) => {
      const doc = docs[j]!;
      const s = snippetAt(seg.bodies[doc]!, body[j]!, seg.marksOf(doc));
      out[i] = s !== "" ? s : snippetAt(
        seg.names[doc]!,
        termPositions(seg, NAME, terms[NAME]!, doc),
        null,
      );
    });
  }
  return out;
}

/** Sorted, distinct positions of `terms` in field `field` of each of `docs` (ascending doc numbers). */
function positionsByDoc(
  segment: Segment,
  field: number,
  terms: Iterable<string>,
  docs: readonly number[],
): number[][] {
  const out = docs.map(() => [] as number[]);
  let lists = 0;
  for (const t of terms) {
    const c = segment.cursor(field, t);
    if (c === null) continue;
    lists++;
    for (let j = 0; j < docs.length; j++) {
      const d = c.advance(docs[j]!);
      if (d === NO_MORE_DOCS) break;
      if (d === docs[j]) { for (const p of c.positions()) out[j]!.push(p); }
    }
  }
  if (lists > 1) { for (const p of out) sortDistinct(p); }
  return out;
}

function sortDistinct(out: number[]): void {
  out.sort((a, b) => a - b);
  let w = 0;
  for (let i = 0; i < out.length; i++) {
    if (i === 0 || out[i] !== out[w - 1]) out[w++] = out[i]!;
  }
  out.length = w;
}

/**
 * The HTTP face of one shard replica (internal API, called by the
 * coordinator): writes, statistics (DFS phase), top-k search with the
 * global statistics, user listings, description. Every body is validated
 * with zod; errors are JSON. The internal routes need the cluster's peer
 * secret (only the coordinator calls them); `/health` takes any token.
 */
export function createShardApp(
  store: ShardStore,
  id: ShardIdentity,
  access: SearchAccess,
): Hono {
  const app = new Hono();
  installErrorHandlers(app, { name: "search-shard", map: searchErrorToEdge });
  app.use("*", searchGuard(access));
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
  app.get("/health", need.read, (c) => c.json({ ok: true, ...id, inflight }));
  app.post("/internal/write", need.peer, async (c) => {
    const w = await readJson(c, ShardWriteSchema, {
      maxBytes: MAX_SHARD_BODY_BYTES,
    });
    const r = await store.write({ add: w.add, delete: w.delete });
    // Near-real-time: index the new documents into a segment soon, off the
    // query path (a query arriving first refreshes by itself).
    refreshTimer ??= setTimeout(() => {
      refreshTimer = undefined;
      store.refresh().catch(() => {});
    }, 100);
    return c.json(r);
  });
  // Segment replication: one replica analyses a write into a segment and
  // answers its log record (binary), which the coordinator hands to the
  // shard's other replicas (/internal/apply) so they do not analyse it.
  app.post("/internal/build", need.peer, async (c) => {
    const w = await readJson(c, ShardWriteSchema, {
      maxBytes: MAX_SHARD_BODY_BYTES,
    });
    const r = await store.writeAsSegment({ add: w.add, delete: w.delete });
    return c.body(r.record as Uint8Array<ArrayBuffer>, 200, {
      "content-type": "application/octet-stream",
      [RESULT_HEADER]: JSON.stringify({ added: r.added, deleted: r.deleted }),
    });
  });
  app.post("/internal/apply", need.peer, async (c) => {
    const type = c.req.header("content-type") ?? "";
    if (
      type.split(";")[0]!.trim().toLowerCase() !== "application/octet-stream"
    ) {
      throw new SearchError(
        "unsupported_media_type",
        "send the write record as application/octet-stream",
      );
    }
    const record = await readBytes(c, MAX_SHARD_BODY_BYTES);
    return c.json(await store.applyRecord(record));
  });
  app.post("/internal/stats", need.peer, async (c) => {
    const req = await readJson(c, StatsRequestSchema, {
      maxBytes: MAX_SHARD_BODY_BYTES,
    });
    return c.json(store.index.stats(req));
  });
  app.post("/internal/search", need.peer, async (c) => {
    const req = await readJson(c, ShardSearchSchema, {
      maxBytes: MAX_SHARD_BODY_BYTES,
    });
    const t0 = performance.now();
    const r = store.index.search(req.query, req.k, req.context);
    const tScored = performance.now();
    const snippets = req.snippets
      ? hitSnippets(r.hits, snippetTerms(req.query, req.context))
      : r.hits.map(() => "");
    const out: ShardSearchResult = {
      hits: r.hits.map((h, i) => ({
        id: h.id,
        score: h.score,
        user_id: h.segment.users[h.doc]!,
        name: h.segment.names[h.doc]!,
        created: h.segment.created[h.doc]!,
        snippet: snippets[i]!,
      })),
      scored: r.scored,
      strategy: r.strategy,
      tookMs: performance.now() - t0,
      snippetMs: performance.now() - tScored,
    };
    return c.json(out);
  });
  app.get("/internal/users/:id", need.peer, (c) => {
    const p = parseWith(
      UserParams,
      { id: c.req.param("id"), ...queryParams(c) },
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
  // One stored document (the coordinator's GET /v1/docs/:id).
  app.get("/internal/doc/:id", need.peer, (c) => {
    const id = parseWith(
      DocumentSchema.shape.id,
      c.req.param("id"),
      "document id",
    );
    return c.json({ doc: store.index.get(id) });
  });
  // Every live document, by id, page by page (replica comparison).
  app.get("/internal/docs", need.peer, (c) => {
    const p = readQuery(
      c,
      z.object({
        after: z.string().max(256).default(""),
        size: z.coerce.number().int().min(1).max(10_000).default(1000),
      }),
    );
    return c.json({ docs: store.index.documentsAfter(p.after, p.size) });
  });
  app.get("/internal/describe", need.peer, (c) =>
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
