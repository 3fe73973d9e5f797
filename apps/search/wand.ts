import { NO_MORE_DOCS, type PostingCursor } from "./postings.ts";
import type { CombinedFieldScorer, TermScorer } from "./bm25.ts";

/**
 * A scored posting list as block-max WAND and the document-at-a-time
 * evaluator walk it: one (field, term) list, or one term over several
 * fields (BM25F). Bounds use the same float formula as scores, so each is
 * ≥ every score it bounds.
 */
export interface ScoredList {
  /** Current document (−1 before the first next(), NO_MORE_DOCS at the end). */
  readonly doc: number;
  /** Posting count, the cost of walking it. */
  readonly cost: number;
  next(): number;
  /** First document ≥ target (stays put when already there). */
  advance(target: number): number;
  /** Exact score of the current document. */
  score(): number;
  /** Upper bound of any document's score in the list. */
  listBound(): number;
  /** Positions the skip data at the block(s) that may hold target; false when none can. */
  shallowAdvance(target: number): boolean;
  /** Bound of the documents in those blocks (after shallowAdvance returned true). */
  blockBound(): number;
  /** Last document those blocks cover (NO_MORE_DOCS when none). */
  blockLastDoc(): number;
}

/** One list taking part in a WAND disjunction. */
export interface WandList {
  list: ScoredList;
  /** Canonical position: scores are summed in this order, so they do not depend on traversal order. */
  order: number;
}

/**
 * A scored list that walks one posting cursor: moves, skip data and bounds
 * are the cursor's; subclasses give the score and the bound of a block
 * from its max tf and min length.
 */
abstract class CursorList implements ScoredList {
  readonly cost: number;
  constructor(readonly cursor: PostingCursor) {
    this.cost = cursor.term.df;
  }
  get doc(): number {
    return this.cursor.doc;
  }
  next(): number {
    return this.cursor.next();
  }
  advance(target: number): number {
    return this.cursor.advance(target);
  }
  abstract score(): number;
  /** Score bound of a block whose max tf and min field length are these. */
  protected abstract bound(maxTf: number, minLen: number): number;
  listBound(): number {
    const c = this.cursor;
    let best = 0;
    // Walk the skip entries only (no decoding): the best block bound.
    const end = c.term.blockStart + c.term.blockCount;
    for (let b = c.term.blockStart; b < end; b++) {
      c.shallowBlock = b;
      const { maxTf, minLen } = c.shallowBlockStats();
      const s = this.bound(maxTf, minLen);
      if (s > best) best = s;
    }
    c.shallowBlock = c.term.blockStart;
    return best;
  }
  shallowAdvance(target: number): boolean {
    return this.cursor.shallowAdvance(target);
  }
  blockBound(): number {
    const { maxTf, minLen } = this.cursor.shallowBlockStats();
    return this.bound(maxTf, minLen);
  }
  blockLastDoc(): number {
    return this.cursor.shallowLastDoc();
  }
}

/** A (field, term) posting list scored with per-field BM25. */
export class FieldTermList extends CursorList {
  constructor(
    cursor: PostingCursor,
    readonly scorer: TermScorer,
    /** Field lengths of the segment's docs (tokens), indexed by doc number. */
    readonly lens: Uint32Array,
  ) {
    super(cursor);
  }
  score(): number {
    return this.scorer.score(this.cursor.tf, this.lens[this.cursor.doc]!);
  }
  protected bound(maxTf: number, minLen: number): number {
    return this.scorer.score(maxTf, minLen);
  }
}

/** One field of a {@link CombinedTermList}. */
export interface CombinedField {
  /** The term's postings in this field, or null when no document of the segment has it there. */
  cursor: PostingCursor | null;
  /** The field's weight w_f (its boost). */
  weight: number;
  lens: Uint32Array;
  /** The shortest length of this field in the segment (for bounds). */
  minLen: number;
}

/**
 * One term over several fields, scored with BM25F
 * ({@link CombinedFieldScorer}). WAND walks one list per field
 * ({@link CombinedFieldPart}), so it still sees which fields hold a
 * document; the term's score is computed once per document, by its first
 * part (in field order) that holds the document, and its other parts add 0.
 *
 * Bounds per part: the score of a document holding the term in that field
 * only (weighted tf from the block's max tf; weighted length at least
 * w_f·(block's min length) + Σ over the other fields g of w_g·(g's segment
 * minimum)). BM25F's tf saturation is concave with value 0 at 0, so a
 * document holding the term in several fields scores at most the sum of
 * those parts' bounds: WAND's sums of bounds stay valid.
 */
export class CombinedTerm {
  readonly parts: CombinedFieldPart[];
  /** Σ over every field of w·(segment minimum length). */
  readonly #floor: number;
  constructor(
    readonly fields: readonly CombinedField[],
    readonly scorer: CombinedFieldScorer,
  ) {
    this.parts = fields.filter((f) => f.cursor !== null).map((f) =>
      new CombinedFieldPart(this, f)
    );
    this.#floor = fields.reduce((n, f) => n + f.weight * f.minLen, 0);
  }

  /** Least weighted length of a document holding the term in f with f-length ≥ minLen. */
  least(f: CombinedField, minLen: number): number {
    return this.#floor - f.weight * f.minLen + f.weight * minLen;
  }

  /** The term's score at doc d when `part` is its first part holding d, else 0. */
  scoreAt(part: CombinedFieldPart, d: number): number {
    let first: CombinedFieldPart | null = null;
    let tf = 0;
    for (const q of this.parts) {
      // Document-at-a-time evaluation may not have moved the other parts yet.
      const x = q.cursor.doc < d ? q.cursor.advance(d) : q.cursor.doc;
      if (x === d) {
        first ??= q;
        tf += q.field.weight * q.cursor.tf;
      }
    }
    if (first !== part) return 0;
    let len = 0;
    for (const f of this.fields) len += f.weight * f.lens[d]!;
    return this.scorer.score(tf, len);
  }
}

/** One field's postings of a {@link CombinedTerm}. */
export class CombinedFieldPart extends CursorList {
  constructor(readonly term: CombinedTerm, readonly field: CombinedField) {
    super(field.cursor!);
  }
  score(): number {
    return this.term.scoreAt(this, this.cursor.doc);
  }
  protected bound(maxTf: number, minLen: number): number {
    return this.term.scorer.score(
      this.field.weight * maxTf,
      this.term.least(this.field, minLen),
    );
  }
}

// Bounds are computed with the same float formula as scores, so each one is
// ≥ the score it bounds; the slack covers sums taken in a different order.
const SLACK = 1 + 1e-9;

/**
 * Block-max WAND (Ding & Suel, SIGIR 2011) over a disjunction of term
 * posting lists: documents whose summed upper bounds (first per list, then
 * per block from the skip data) cannot reach the current top-k threshold
 * are skipped without being decoded or scored. The callbacks keep it pure
 * and independent of the top-k structure.
 *
 * @param threshold current admission score (−∞ until k hits are kept); a
 *   document is scored when its bound is ≥ it, so ties (broken by id) are
 *   never skipped.
 * @param collect receives each candidate doc and its exact score.
 * @returns the number of documents fully scored.
 */
export function blockMaxWand(
  lists: WandList[],
  threshold: () => number,
  collect: (doc: number, score: number) => void,
): number {
  const n = lists.length;
  const maxOf = new Float64Array(n);
  const active: number[] = [];
  for (let i = 0; i < n; i++) {
    const l = lists[i]!;
    // Whole-list bound: the best block bound (max tf, min length).
    maxOf[i] = l.list.listBound() * SLACK;
    if (l.list.next() !== NO_MORE_DOCS) active.push(i);
  }
  const byDoc = (a: number, b: number) =>
    lists[a]!.list.doc - lists[b]!.list.doc;
  let scored = 0;
  const atDoc: number[] = [];
  while (active.length > 0) {
    active.sort(byDoc);
    while (
      active.length > 0 &&
      lists[active[active.length - 1]!]!.list.doc === NO_MORE_DOCS
    ) {
      active.pop();
    }
    if (active.length === 0) break;
    const theta = threshold();
    // Pivot: first list at which the summed list bounds reach theta.
    let acc = 0;
    let p = -1;
    for (let i = 0; i < active.length; i++) {
      acc += maxOf[active[i]!]!;
      if (acc >= theta) {
        p = i;
        break;
      }
    }
    if (p < 0) break;
    const pivotDoc = lists[active[p]!]!.list.doc;
    while (
      p + 1 < active.length && lists[active[p + 1]!]!.list.doc === pivotDoc
    ) p++;

    if (theta > -Infinity) {
      // Block-max check: the bounds of the blocks that may hold pivotDoc.
      let blockSum = 0;
      for (let i = 0; i <= p; i++) {
        const l = lists[active[i]!]!.list;
        if (l.shallowAdvance(pivotDoc)) blockSum += l.blockBound() * SLACK;
      }
      if (blockSum < theta) {
        // No doc before the end of the shortest of these blocks (or before
        // the next list's doc) can make it.
        let next = p + 1 < active.length
          ? lists[active[p + 1]!]!.list.doc
          : NO_MORE_DOCS;
        for (let i = 0; i <= p; i++) {
          const last = lists[active[i]!]!.list.blockLastDoc();
          if (last !== NO_MORE_DOCS && last + 1 < next) next = last + 1;
        }
        if (next === NO_MORE_DOCS) break;
        for (let i = 0; i <= p; i++) {
          const c = lists[active[i]!]!.list;
          if (c.doc < next) c.advance(next);
        }
        continue;
      }
    }

    if (lists[active[0]!]!.list.doc === pivotDoc) {
      atDoc.length = 0;
      for (let i = 0; i <= p; i++) atDoc.push(active[i]!);
      atDoc.sort((a, b) => lists[a]!.order - lists[b]!.order);
      let score = 0;
      for (const i of atDoc) score += lists[i]!.list.score();
      scored++;
      collect(pivotDoc, score);
      for (let i = 0; i <= p; i++) lists[active[i]!]!.list.next();
    } else {
      for (let i = 0; i < p; i++) {
        const c = lists[active[i]!]!.list;
        if (c.doc < pivotDoc) c.advance(pivotDoc);
      }
    }
  }
  return scored;
}
