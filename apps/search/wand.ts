import { NO_MORE_DOCS, type PostingCursor } from "./postings.ts";
import type { TermScorer } from "./bm25.ts";

/** One (field, term) posting list taking part in a WAND disjunction. */
export interface WandList {
  cursor: PostingCursor;
  scorer: TermScorer;
  /** Field lengths of the segment's docs (tokens), indexed by doc number. */
  lens: Uint32Array;
  /** Canonical position: scores are summed in this order, so they do not depend on traversal order. */
  order: number;
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
    const best = listBound(l);
    maxOf[i] = best * SLACK;
    if (l.cursor.next() !== NO_MORE_DOCS) active.push(i);
  }
  const byDoc = (a: number, b: number) =>
    lists[a]!.cursor.doc - lists[b]!.cursor.doc;
  let scored = 0;
  const atDoc: number[] = [];
  while (active.length > 0) {
    active.sort(byDoc);
    while (
      active.length > 0 &&
      lists[active[active.length - 1]!]!.cursor.doc === NO_MORE_DOCS
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
    const pivotDoc = lists[active[p]!]!.cursor.doc;
    while (
      p + 1 < active.length && lists[active[p + 1]!]!.cursor.doc === pivotDoc
    ) p++;

    if (theta > -Infinity) {
      // Block-max check: the bounds of the blocks that may hold pivotDoc.
      let blockSum = 0;
      for (let i = 0; i <= p; i++) {
        const l = lists[active[i]!]!;
        if (l.cursor.shallowAdvance(pivotDoc)) {
          const { maxTf, minLen } = l.cursor.shallowBlockStats();
          blockSum += l.scorer.score(maxTf, minLen) * SLACK;
        }
      }
      if (blockSum < theta) {
        // No doc before the end of the shortest of these blocks (or before
        // the next list's doc) can make it.
        let next = p + 1 < active.length
          ? lists[active[p + 1]!]!.cursor.doc
          : NO_MORE_DOCS;
        for (let i = 0; i <= p; i++) {
          const last = lists[active[i]!]!.cursor.shallowLastDoc();
          if (last !== NO_MORE_DOCS && last + 1 < next) next = last + 1;
        }
        if (next === NO_MORE_DOCS) break;
        for (let i = 0; i <= p; i++) {
          const c = lists[active[i]!]!.cursor;
          if (c.doc < next) c.advance(next);
        }
        continue;
      }
    }

    if (lists[active[0]!]!.cursor.doc === pivotDoc) {
      atDoc.length = 0;
      for (let i = 0; i <= p; i++) atDoc.push(active[i]!);
      atDoc.sort((a, b) => lists[a]!.order - lists[b]!.order);
      let score = 0;
      for (const i of atDoc) {
        const l = lists[i]!;
        score += l.scorer.score(l.cursor.tf, l.lens[pivotDoc]!);
      }
      scored++;
      collect(pivotDoc, score);
      for (let i = 0; i <= p; i++) lists[active[i]!]!.cursor.next();
    } else {
      for (let i = 0; i < p; i++) {
        const c = lists[active[i]!]!.cursor;
        if (c.doc < pivotDoc) c.advance(pivotDoc);
      }
    }
  }
  return scored;
}

function listBound(l: WandList): number {
  const c = l.cursor;
  let best = 0;
  // Walk the skip entries only (no decoding).
  c.shallowBlock = c.term.blockStart;
  const end = c.term.blockStart + c.term.blockCount;
  for (let b = c.term.blockStart; b < end; b++) {
    c.shallowBlock = b;
    const { maxTf, minLen } = c.shallowBlockStats();
    const s = l.scorer.score(maxTf, minLen);
    if (s > best) best = s;
  }
  c.shallowBlock = c.term.blockStart;
  return best;
}
