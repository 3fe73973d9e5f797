/**
 * BM25 (Robertson & Zaragoza) as Lucene computes it, applied per field and
 * summed with per-field boosts: score(d, q) = Σ over query terms t and
 * fields f of boost_f · idf(f, t) · tf·(k1+1) / (tf + k1·(1 − b + b·len/avgLen_f)).
 * Every input comes from {@link CollectionStats}, so a shard scoring with
 * the global statistics scores exactly as one index over all documents.
 */

/** The two BM25 knobs. */
export interface Bm25Params {
  /** Term-frequency saturation (default 1.2). */
  k1: number;
  /** Length normalisation, 0..1 (default 0.75). */
  b: number;
}

/** k1 = 1.2, b = 0.75. */
export const DEFAULT_BM25: Bm25Params = { k1: 1.2, b: 0.75 };

/** Statistics BM25 needs about the whole collection. */
export interface CollectionStats {
  /** Documents in the collection (deleted ones count until merged away, as in Lucene). */
  docCount: number;
  /** Sum of field lengths in tokens, by field name. */
  fieldLength: Record<string, number>;
  /** Documents containing each term, keyed by {@link statKey}. */
  df: Record<string, number>;
}

/** Key of a (field, term) pair in {@link CollectionStats.df}. */
export function statKey(field: string, term: string): string {
  return field + "\u0000" + term;
}

/** Lucene's BM25 idf: ln(1 + (N − df + 0.5) / (df + 0.5)); never negative. */
export function idf(docCount: number, df: number): number {
  return Math.log(1 + (docCount - df + 0.5) / (df + 0.5));
}

/**
 * Scores one (field, term) pair for documents; precomputes everything that
 * does not depend on the document.
 */
export class TermScorer {
  /** boost · idf: the part common to every document. */
  readonly weight: number;
  readonly #k1: number;
  readonly #k1b: number;
  readonly #k1one: number;

  /**
   * @param boost field boost; @param idfValue from {@link idf};
   * @param avgLen mean field length (tokens) over the collection.
   */
  constructor(
    boost: number,
    idfValue: number,
    avgLen: number,
    params: Bm25Params = DEFAULT_BM25,
  ) {
    this.weight = boost * idfValue;
    this.#k1 = params.k1;
    this.#k1one = params.k1 + 1;
    // k1·(1−b) and k1·b/avgLen, so score() is two multiplies and a divide.
    this.#k1b = avgLen > 0 ? params.k1 * params.b / avgLen : 0;
    this.#base = params.k1 * (1 - params.b);
  }
  readonly #base: number;

  /** Score of a document with frequency `tf` and field length `len` tokens. */
  score(tf: number, len: number): number {
    if (tf <= 0) return 0;
    return this.weight * (tf * this.#k1one) /
      (tf + this.#base + this.#k1b * len);
  }

  /** The best possible score for any document (tf → ∞, so weight·(k1+1)). */
  maxScore(): number {
    return this.weight * this.#k1one;
  }

  /** k1, exposed for tests. */
  get k1(): number {
    return this.#k1;
  }
}

/**
 * BM25F over several fields, as Lucene's `CombinedFieldQuery` (Elasticsearch's
 * `combined_fields`) computes it: the fields count as one field in which a
 * word of field f occurs `w_f` times, so tf = Σ w_f·tf_f, length
 * L = Σ w_f·len_f, average length Σ w_f·avgLen_f, and saturation and length
 * normalisation apply once to the sum (Robertson, Zaragoza & Taylor 2004,
 * "Simple BM25 extension to multiple weighted fields"). Summing per-field
 * BM25 scores instead saturates each field separately, so a word found in
 * both the title and the abstract (which often repeats the title) counts
 * nearly twice. The idf uses the largest per-field df (as Lucene does).
 */
export class CombinedFieldScorer extends TermScorer {
  /**
   * Same formula as {@link TermScorer} over the weighted tf and length.
   * @param queryWeight the clause's weight (query term frequency)
   * @param idfValue from {@link idf} with the largest per-field df
   * @param avgLen Σ w_f · (fieldLength_f / docCount), in field order
   */
  constructor(
    queryWeight: number,
    idfValue: number,
    avgLen: number,
    params: Bm25Params = DEFAULT_BM25,
  ) {
    super(queryWeight, idfValue, avgLen, params);
  }
}
