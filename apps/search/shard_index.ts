import { Analyzer, type AnalyzerOptions } from "./analyzer.ts";
import { type Bm25Params, DEFAULT_BM25, statKey } from "./bm25.ts";
import {
  DEFAULT_FIELD_BOOSTS,
  type StoredDocument,
  TEXT_FIELDS,
  type TextField,
} from "./document.ts";
import {
  mergeShardStats,
  type ScoringContext,
  type ShardStats,
  type StatsRequest,
  statsRequestFor,
} from "./global_stats.ts";
import type { ParsedQuery } from "./query_parser.ts";
import { buildSegment, type Segment } from "./segment.ts";
import { mergeSegments } from "./segment_merge.ts";
import {
  executeQuery,
  type ExecuteResult,
  type SegmentView,
} from "./searcher.ts";

/** Knobs of a {@link ShardIndex}. */
export interface ShardIndexOptions {
  analyzer?: AnalyzerOptions;
  boosts?: Record<TextField, number>;
  bm25?: Bm25Params;
}

/** A sealed segment with its tombstones. */
export interface SegmentHandle {
  /** Stable name (the segment file's number in a store). */
  name: number;
  segment: Segment;
  deleted: Uint8Array;
  deletedCount: number;
  /** Per (field, term) key: deleted docs that contain it, so statistics stay exact. */
  deletedDf: Map<string, number>;
  /** Per field: summed lengths of deleted docs. */
  deletedLen: number[];
  /** Whether a segment file holds it (a store persists handles on flush). */
  persisted: boolean;
  /**
   * The segment's file bytes when it arrived encoded (built by another
   * replica), so a flush writes them without encoding it again.
   */
  encoded?: Uint8Array;
}

/**
 * One shard's index in memory, pure (no I/O): sealed segments with
 * tombstones plus a buffer of new documents that {@link refresh} turns into
 * a new small segment (near-real-time search, like Lucene's refresh; a
 * search refreshes first if needed). Segments start unpersisted; a store
 * writes them to files and marks them persisted. Re-adding an id replaces
 * the document.
 * Statistics count live documents only: deleting a document subtracts its
 * terms (found by re-analyzing its stored text), so a shard's statistics
 * do not depend on how its documents happen to be split into segments.
 */
export class ShardIndex {
  readonly analyzer: Analyzer;
  readonly boosts: Record<TextField, number>;
  readonly bm25: Bm25Params;
  #handles: SegmentHandle[] = [];
  readonly #buffer = new Map<string, StoredDocument>();
  readonly #where = new Map<string, { handle: SegmentHandle; doc: number }>();
  #nextName = 1;

  /** @param options analyzer, field boosts, BM25 parameters. */
  constructor(readonly options: ShardIndexOptions = {}) {
    this.analyzer = new Analyzer(options.analyzer);
    this.boosts = options.boosts ?? DEFAULT_FIELD_BOOSTS;
    this.bm25 = options.bm25 ?? DEFAULT_BM25;
  }

  /** Sealed segments, oldest first. */
  get segments(): readonly SegmentHandle[] {
    return this.#handles;
  }

  /** Documents waiting in the in-memory buffer. */
  get bufferedCount(): number {
    return this.#buffer.size;
  }

  /** Live documents. */
  get liveCount(): number {
    return this.#where.size + this.#buffer.size;
  }

  /** Adds or replaces documents (visible to searches at once). */
  add(docs: Iterable<StoredDocument>): void {
    for (const doc of docs) {
      this.#tombstone(doc.id);
      this.#buffer.delete(doc.id);
      this.#buffer.set(doc.id, doc);
    }
  }

  /** Deletes a document; returns whether it existed. */
  delete(id: string): boolean {
    const inSegment = this.#tombstone(id);
    const inBuffer = this.#buffer.delete(id);
    return inSegment || inBuffer;
  }

  /** The stored document with this id, or null. */
  get(id: string): StoredDocument | null {
    const b = this.#buffer.get(id);
    if (b) return b;
    const w = this.#where.get(id);
    return w ? w.handle.segment.document(w.doc) : null;
  }

  #tombstone(id: string): boolean {
    const w = this.#where.get(id);
    if (!w) return false;
    if (w.handle.deleted[w.doc] === 0) this.#markDeleted(w.handle, w.doc);
    this.#where.delete(id);
    return true;
  }

  #markDeleted(h: SegmentHandle, doc: number): void {
    h.deleted[doc] = 1;
    h.deletedCount++;
    const seg = h.segment;
    TEXT_FIELDS.forEach((field, f) => {
      h.deletedLen[f] = (h.deletedLen[f] ?? 0) + seg.lens[f]![doc]!;
      const text = f === 0 ? seg.names[doc]! : seg.bodies[doc]!;
      for (const t of new Set(this.analyzer.analyze(text).terms)) {
        const key = statKey(field, t);
        h.deletedDf.set(key, (h.deletedDf.get(key) ?? 0) + 1);
      }
    });
  }

  /** Turns the buffer into a new (unpersisted) segment; null when the buffer is empty. */
  refresh(): SegmentHandle | null {
    if (this.#buffer.size === 0) return null;
    const segment = buildSegment([...this.#buffer.values()], this.analyzer);
    this.#buffer.clear();
    return this.attach(this.#nextName++, segment, null, false);
  }

  /**
   * Adds a segment built from a write's documents (here or by another
   * replica: segment replication) as the newest, after the buffer's
   * documents; it replaces same-id documents as {@link add} would.
   * @param encoded the segment's file bytes, kept for the next flush.
   */
  addSegment(segment: Segment, encoded?: Uint8Array): SegmentHandle {
    this.refresh();
    const h = this.attach(this.#nextName++, segment, null, false);
    h.encoded = encoded;
    return h;
  }

  /** Documents in segments no file holds yet, plus the buffer. */
  get unpersistedCount(): number {
    let n = this.#buffer.size;
    for (const h of this.#handles) if (!h.persisted) n += h.segment.docCount;
    return n;
  }

  /**
   * Adds a sealed segment (e.g. loaded from disk) with its tombstones;
   * its documents replace same-id documents already attached.
   */
  attach(
    name: number,
    segment: Segment,
    deleted: Uint8Array | null,
    persisted = true,
  ): SegmentHandle {
    const handle = newHandle(name, segment, persisted);
    for (let d = 0; d < segment.docCount; d++) {
      if (deleted !== null && deleted[d] === 1) {
        this.#markDeleted(handle, d);
        continue;
      }
      this.#tombstone(segment.ids[d]!);
      this.#where.set(segment.ids[d]!, { handle, doc: d });
    }
    this.#handles.push(handle);
    if (name >= this.#nextName) this.#nextName = name + 1;
    return handle;
  }

  /**
   * Merges sealed segments into one that holds only their live documents
   * (tombstones are dropped here), in their order. Pure: the caller
   * persists the result and then removes the old files.
   */
  merge(names: readonly number[]): SegmentHandle | null {
    const chosen = this.#handles.filter((h) => names.includes(h.name));
    if (chosen.length === 0) return null;
    // Tombstones are dropped here; docs deleted since stay tombstoned below.
    const segment = mergeSegments(
      chosen.map((h) => ({ segment: h.segment, deleted: h.deleted })),
    );
    const handle = newHandle(this.#nextName++, segment, false);
    // Docs deleted while the merge ran were tombstoned in the old handles.
    for (let d = 0; d < segment.docCount; d++) {
      const w = this.#where.get(segment.ids[d]!);
      if (w && chosen.includes(w.handle)) {
        this.#where.set(segment.ids[d]!, { handle, doc: d });
      } else this.#markDeleted(handle, d);
    }
    const first = this.#handles.indexOf(chosen[0]!);
    this.#handles = this.#handles.filter((h) => !chosen.includes(h));
    this.#handles.splice(Math.min(first, this.#handles.length), 0, handle);
    return handle;
  }

  /** Segments to search (refreshing the buffer first). */
  views(): SegmentView[] {
    this.refresh();
    return this.#handles.map((h) => ({
      segment: h.segment,
      deleted: h.deletedCount > 0 ? h.deleted : null,
    }));
  }

  #allHandles(): Array<{ segment: Segment; h: SegmentHandle }> {
    this.refresh();
    return this.#handles.map((h) => ({ segment: h.segment, h }));
  }

  /** This shard's share of the statistics a query needs (DFS phase). */
  stats(request: StatsRequest): ShardStats {
    const views = this.#allHandles();
    const out: ShardStats = {
      docCount: 0,
      fieldLength: {},
      df: {},
      prefixes: {},
    };
    for (const f of TEXT_FIELDS) out.fieldLength[f] = 0;
    for (const { segment, h } of views) {
      out.docCount += segment.docCount - h.deletedCount;
      TEXT_FIELDS.forEach((f, i) =>
        out.fieldLength[f]! += segment.fieldLength[i]! - h.deletedLen[i]!
      );
    }
    for (const key of request.keys) {
      const sep = key.indexOf("\u0000");
      const f = TEXT_FIELDS.indexOf(key.slice(0, sep) as TextField);
      if (f < 0) continue;
      let df = 0;
      for (const { segment, h } of views) {
        df += (segment.term(f, key.slice(sep + 1))?.df ?? 0) -
          (h.deletedDf.get(key) ?? 0);
      }
      out.df[key] = df;
    }
    for (const key of request.prefixes) {
      const sep = key.indexOf("\u0000");
      const f = TEXT_FIELDS.indexOf(key.slice(0, sep) as TextField);
      if (f < 0) continue;
      const m = new Map<string, number>();
      for (const { segment, h } of views) {
        for (const [t, df] of segment.prefixTerms(f, key.slice(sep + 1))) {
          const live = df - (h.deletedDf.get(statKey(TEXT_FIELDS[f]!, t)) ?? 0);
          m.set(t, (m.get(t) ?? 0) + live);
        }
      }
      out.prefixes[key] = [...m].filter(([, df]) => df > 0);
    }
    return out;
  }

  /** Top `k` hits for a query scored with the given (global) context. */
  search(
    query: ParsedQuery,
    k: number,
    context: ScoringContext,
  ): ExecuteResult {
    return executeQuery(this.views(), query, {
      k,
      context,
      boosts: this.boosts,
      bm25: this.bm25,
    });
  }

  /** Top `k` with this shard's own statistics (a single, unsharded index). */
  searchLocal(query: ParsedQuery, k: number): ExecuteResult {
    return this.search(
      query,
      k,
      mergeShardStats([this.stats(statsRequestFor(query))]),
    );
  }

  /**
   * Live documents with ids after `after` (code-unit order), at most
   * `size`: a full listing, page by page, to compare replicas document for
   * document. Sorts every live id per call (tests and repair, not queries).
   */
  documentsAfter(after: string, size: number): StoredDocument[] {
    const ids = [...this.#where.keys(), ...this.#buffer.keys()]
      .filter((id) => id > after)
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
      .slice(0, size);
    return ids.map((id) => this.get(id)!);
  }

  /** One user's live documents, newest first (then by id), paginated. */
  userDocs(
    userId: number,
    from: number,
    size: number,
  ): { total: number; docs: StoredDocument[] } {
    const all: StoredDocument[] = [];
    for (const h of this.#handles) {
      for (const d of h.segment.userDocs(userId)) {
        if (h.deleted[d] === 0) all.push(h.segment.document(d));
      }
    }
    for (const doc of this.#buffer.values()) {
      if (doc.user_id === userId) all.push(doc);
    }
    all.sort(compareNewest);
    return { total: all.length, docs: all.slice(from, from + size) };
  }

  /** Sizes for /v1/stats. */
  describe(): {
    docs: number;
    buffered: number;
    segments: Array<
      { name: number; docs: number; deleted: number; postingsBytes: number }
    >;
  } {
    return {
      docs: this.liveCount,
      buffered: this.#buffer.size,
      segments: this.#handles.map((h) => ({
        name: h.name,
        docs: h.segment.docCount,
        deleted: h.deletedCount,
        postingsBytes: h.segment.postings.bytes.length,
      })),
    };
  }
}

function newHandle(
  name: number,
  segment: Segment,
  persisted: boolean,
): SegmentHandle {
  return {
    persisted,
    name,
    segment,
    deleted: new Uint8Array(segment.docCount),
    deletedCount: 0,
    deletedDf: new Map(),
    deletedLen: TEXT_FIELDS.map(() => 0),
  };
}

/** Newest first, then id ascending: the order of a user's document list. */
export function compareNewest(a: StoredDocument, b: StoredDocument): number {
  if (a.created !== b.created) return b.created - a.created;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
