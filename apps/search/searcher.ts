import {
  type Bm25Params,
  CombinedFieldScorer,
  DEFAULT_BM25,
  idf,
  statKey,
  TermScorer,
} from "./bm25.ts";
import {
  DEFAULT_FIELD_BOOSTS,
  TEXT_FIELDS,
  type TextField,
} from "./document.ts";
import type { ScoringContext } from "./global_stats.ts";
import { NO_MORE_DOCS, type PostingCursor } from "./postings.ts";
import type { Clause, ParsedQuery } from "./query_parser.ts";
import type { Segment } from "./segment.ts";
import { TopK } from "./top_k.ts";
import {
  blockMaxWand,
  CombinedTerm,
  FieldTermList,
  type ScoredList,
  type WandList,
} from "./wand.ts";

/** A segment as a search sees it: the immutable index plus its tombstones. */
export interface SegmentView {
  segment: Segment;
  /** 1 at the number of each deleted doc, or null when none are. */
  deleted: Uint8Array | null;
}

/** One ranked document inside a shard. */
export interface ShardHit {
  id: string;
  score: number;
  segment: Segment;
  doc: number;
}

/** Knobs of {@link executeQuery}. */
export interface ExecuteOptions {
  /** Hits to return (top-k). */
  k: number;
  /** Global statistics and prefix expansions (see global_stats.ts). */
  context: ScoringContext;
  boosts?: Record<TextField, number>;
  bm25?: Bm25Params;
}

/** What a query execution did, for metrics and tests. */
export interface ExecuteResult {
  hits: ShardHit[];
  /** Documents fully scored (block-max WAND keeps this far below the matches). */
  scored: number;
  strategy: "wand" | "boolean";
}

interface ClauseExec {
  cost: number;
  /** Smallest doc ≥ target that may match (advances cursors). */
  nextCandidate(target: number): number;
  /** Whether doc matches; adds its contributions to acc.score in canonical order. */
  match(doc: number, acc: { score: number }): boolean;
}

class DisjunctionExec implements ClauseExec {
  readonly cost: number;
  constructor(readonly parts: ScoredList[]) {
    this.cost = parts.reduce((s, p) => s + p.cost, 0);
  }
  nextCandidate(target: number): number {
    let min = NO_MORE_DOCS;
    for (const p of this.parts) {
      const d = p.advance(target);
      if (d < min) min = d;
    }
    return min;
  }
  match(doc: number, acc: { score: number }): boolean {
    let hit = false;
    for (const p of this.parts) {
      if (p.advance(doc) === doc) {
        acc.score += p.score();
        hit = true;
      }
    }
    return hit;
  }
}

interface PhraseField {
  cursors: PostingCursor[];
  scorer: TermScorer;
  lens: Uint32Array;
}

class PhraseExec implements ClauseExec {
  readonly cost: number;
  constructor(readonly fields: PhraseField[], readonly offsets: number[]) {
    this.cost = fields.reduce(
      (s, f) => s + Math.min(...f.cursors.map((c) => c.term.df)),
      0,
    );
  }
  nextCandidate(target: number): number {
    let min = NO_MORE_DOCS;
    for (const f of this.fields) {
      const d = alignCursors(f.cursors, target);
      if (d < min) min = d;
    }
    return min;
  }
  match(doc: number, acc: { score: number }): boolean {
    let hit = false;
    for (const f of this.fields) {
      if (!f.cursors.every((c) => c.advance(doc) === doc)) continue;
      const freq = fieldPhraseFreq(f, this.offsets);
      if (freq > 0) {
        acc.score += f.scorer.score(freq, f.lens[doc]!);
        hit = true;
      }
    }
    return hit;
  }
}

/**
 * One field of a phrase as a {@link ScoredList}, so block-max WAND can
 * take optional phrases (the parser's proximity clauses) with the words:
 * it walks the documents holding every word, stops at those where the
 * phrase occurs, and bounds every block by the phrase's best possible
 * score (tf → ∞; loose, but a phrase is rarer than its rarest word, whose
 * skip data it moves by).
 */
class PhraseList implements ScoredList {
  readonly cost: number;
  doc = -1;
  #freq = 0;
  readonly #rarest: PostingCursor;
  constructor(readonly f: PhraseField, readonly offsets: number[]) {
    this.#rarest = f.cursors.reduce((a, b) => b.term.df < a.term.df ? b : a);
    this.cost = this.#rarest.term.df;
  }
  next(): number {
    return this.#seek(this.doc + 1);
  }
  advance(target: number): number {
    return this.doc >= target ? this.doc : this.#seek(target);
  }
  #seek(target: number): number {
    for (let d = target;;) {
      const doc = alignCursors(this.f.cursors, d);
      if (doc === NO_MORE_DOCS) return this.doc = NO_MORE_DOCS;
      const freq = fieldPhraseFreq(this.f, this.offsets);
      if (freq > 0) {
        this.#freq = freq;
        return this.doc = doc;
      }
      d = doc + 1;
    }
  }
  score(): number {
    return this.f.scorer.score(this.#freq, this.f.lens[this.doc]!);
  }
  listBound(): number {
    return this.f.scorer.maxScore();
  }
  shallowAdvance(target: number): boolean {
    return this.#rarest.shallowAdvance(target);
  }
  blockBound(): number {
    return this.f.scorer.maxScore();
  }
  blockLastDoc(): number {
    return this.#rarest.shallowLastDoc();
  }
}

/**
 * Moves every cursor to the first document ≥ `target` that all of them
 * hold (a phrase's candidates); NO_MORE_DOCS when one runs out.
 */
function alignCursors(cursors: PostingCursor[], target: number): number {
  for (let d = target;;) {
    let max = d;
    let all = true;
    for (const c of cursors) {
      const x = c.advance(max);
      if (x === NO_MORE_DOCS) return NO_MORE_DOCS;
      if (x !== max) all = false;
      if (x > max) max = x;
    }
    if (all) return max;
    d = max;
  }
}

/** The phrase's occurrences in the document a field's cursors sit on. */
function fieldPhraseFreq(f: PhraseField, offsets: number[]): number {
  return phraseFreq(f.cursors.map((c) => c.positions()), offsets);
}

// Segments are immutable: each field's shortest length is computed once.
const MIN_LENS = new WeakMap<Segment, number[]>();
function minFieldLength(seg: Segment, f: number): number {
  let m = MIN_LENS.get(seg);
  if (m === undefined) {
    m = seg.lens.map((lens) => {
      let min = Infinity;
      for (let d = 0; d < lens.length; d++) if (lens[d]! < min) min = lens[d]!;
      return min === Infinity ? 0 : min;
    });
    MIN_LENS.set(seg, m);
  }
  return m[f] ?? 0;
}

/** Occurrences of the phrase: start positions where every term sits at its offset. */
export function phraseFreq(positions: number[][], offsets: number[]): number {
  const sets = positions.slice(1).map((p) => new Set(p));
  let n = 0;
  for (const start of positions[0]!) {
    const base = start - offsets[0]!;
    if (sets.every((s, i) => s.has(base + offsets[i + 1]!))) n++;
  }
  return n;
}

/**
 * Runs a parsed query over a shard's segments and returns its top `k` by
 * score (ties by id). Pure disjunctions of terms and prefixes use block-max
 * WAND; anything with required clauses or phrases is evaluated document at
 * a time, driven by the cheapest required clause. Scores use only
 * `options.context` and each document's own frequencies and lengths, so the
 * same document scores identically in any shard or segment.
 */
export function executeQuery(
  views: readonly SegmentView[],
  query: ParsedQuery,
  options: ExecuteOptions,
): ExecuteResult {
  const boosts = options.boosts ?? DEFAULT_FIELD_BOOSTS;
  const params = options.bm25 ?? DEFAULT_BM25;
  const { stats, expansions } = options.context;
  const scorers = new Map<string, TermScorer>();
  const scorerFor = (
    field: TextField,
    idfValue: number,
    key: string,
    weight = 1,
  ): TermScorer => {
    if (weight !== 1) key += "\u0002" + weight;
    let s = scorers.get(key);
    if (s === undefined) {
      const avg = stats.docCount > 0
        ? (stats.fieldLength[field] ?? 0) / stats.docCount
        : 0;
      // A word repeated in the query (weight = its count) scores as that
      // many copies of the clause would.
      s = new TermScorer(boosts[field] * weight, idfValue, avg, params);
      scorers.set(key, s);
    }
    return s;
  };
  const termIdf = (field: TextField, term: string) =>
    idf(stats.docCount, stats.df[statKey(field, term)] ?? 0);
  const combined = new Map<string, CombinedFieldScorer>();
  const combinedScorer = (
    c: Extract<Clause, { kind: "term" }>,
  ): CombinedFieldScorer => {
    const key = c.fields.join(",") + "\u0000" + c.term + "\u0000" +
      (c.weight ?? 1);
    let s = combined.get(key);
    if (s === undefined) {
      let df = 0;
      let avg = 0;
      for (const field of c.fields) {
        df = Math.max(df, stats.df[statKey(field, c.term)] ?? 0);
        avg += boosts[field] *
          (stats.docCount > 0
            ? (stats.fieldLength[field] ?? 0) / stats.docCount
            : 0);
      }
      s = new CombinedFieldScorer(
        c.weight ?? 1,
        idf(stats.docCount, df),
        avg,
        params,
      );
      combined.set(key, s);
    }
    return s;
  };

  const top = new TopK<ShardHit>(options.k);
  const useWand = query.must.length === 0;
  let scored = 0;

  for (const view of views) {
    const seg = view.segment;
    const parts = (c: Clause): ScoredList[] => {
      if (c.kind === "term" && c.fields.length > 1) {
        // A word over several fields: one BM25F list (see CombinedFieldScorer).
        return new CombinedTerm(
          c.fields.map((field) => {
            const f = TEXT_FIELDS.indexOf(field);
            return {
              cursor: seg.cursor(f, c.term),
              weight: boosts[field],
              lens: seg.lens[f]!,
              minLen: minFieldLength(seg, f),
            };
          }),
          combinedScorer(c),
        ).parts;
      }
      const out: ScoredList[] = [];
      const terms = c.kind === "term"
        ? [c.term]
        : c.kind === "prefix"
        ? null
        : [];
      for (const field of c.fields) {
        const f = TEXT_FIELDS.indexOf(field);
        const list = terms ??
          expansions[statKey(field, (c as { prefix: string }).prefix)] ?? [];
        for (const t of list) {
          const cursor = seg.cursor(f, t);
          if (cursor === null) continue;
          const key = statKey(field, t);
          out.push(
            new FieldTermList(
              cursor,
              scorerFor(
                field,
                termIdf(field, t),
                key,
                c.kind === "term" ? c.weight ?? 1 : 1,
              ),
              seg.lens[f]!,
            ),
          );
        }
      }
      return out;
    };
    const phraseFields = (
      c: Extract<Clause, { kind: "phrase" }>,
    ): PhraseField[] => {
      const fields: PhraseField[] = [];
      for (const field of c.fields) {
        const f = TEXT_FIELDS.indexOf(field);
        const cursors = c.terms.map((t) => seg.cursor(f, t));
        if (cursors.some((x) => x === null)) continue;
        const idfSum = c.terms.reduce((s, t) => s + termIdf(field, t), 0);
        fields.push({
          cursors: cursors as PostingCursor[],
          scorer: scorerFor(
            field,
            idfSum,
            "\u0001" + field + "\u0000" + c.terms.join(" ") + "\u0000" +
              c.offsets.join(","),
            c.weight ?? 1,
          ),
          lens: seg.lens[f]!,
        });
      }
      return fields;
    };
    const exec = (c: Clause): ClauseExec =>
      c.kind !== "phrase"
        ? new DisjunctionExec(parts(c))
        : new PhraseExec(phraseFields(c), c.offsets);

    const deleted = view.deleted;
    const user = query.user;
    const users = seg.users;
    const excluded = query.mustNot.map(exec);
    const ids = seg.ids;
    const accept = (doc: number): boolean => {
      if (deleted !== null && deleted[doc] === 1) return false;
      if (user !== null && users[doc] !== user) return false;
      const none = { score: 0 };
      for (const x of excluded) if (x.match(doc, none)) return false;
      return true;
    };
    const collect = (doc: number, score: number): void => {
      const id = ids[doc]!;
      if (top.accepts(score, id) && accept(doc)) {
        top.offer({ id, score, segment: seg, doc });
      }
    };

    if (useWand) {
      const lists: WandList[] = [];
      for (const c of query.should) {
        const ls = c.kind === "phrase"
          ? phraseFields(c).map((f) => new PhraseList(f, c.offsets))
          : parts(c);
        for (const list of ls) lists.push({ list, order: lists.length });
      }
      scored += blockMaxWand(lists, () => top.threshold(), collect);
      continue;
    }

    const must = query.must.map(exec);
    const should = query.should.map(exec);
    let driver: ClauseExec[];
    if (must.length > 0) {
      driver = [must.reduce((a, b) => (b.cost < a.cost ? b : a))];
    } else driver = should;
    const acc = { score: 0 };
    let target = 0;
    for (;;) {
      let cand = NO_MORE_DOCS;
      for (const d of driver) {
        const x = d.nextCandidate(target);
        if (x < cand) cand = x;
      }
      if (cand === NO_MORE_DOCS) break;
      target = cand + 1;
      acc.score = 0;
      let ok = true;
      for (const m of must) {
        if (!m.match(cand, acc)) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      let any = false;
      for (const s of should) if (s.match(cand, acc)) any = true;
      if (must.length === 0 && !any) continue;
      scored++;
      collect(cand, acc.score);
    }
  }
  return { hits: top.sorted(), scored, strategy: useWand ? "wand" : "boolean" };
}
