import { type CollectionStats, idf, statKey } from "./bm25.ts";
import type { Clause, ParsedQuery } from "./query_parser.ts";

/**
 * Most optional words a query is scored with. A pasted paragraph has
 * hundreds of words; BM25's ranking is dominated by the rarest ones, and
 * the work (posting lists to walk, WAND pivots) grows with every word kept.
 */
export const MAX_SCORED_TERMS = 32;

type TermClause = Extract<Clause, { kind: "term" }>;
type PhraseClause = Extract<Clause, { kind: "phrase" }>;

/** A phrase with a weight: one of the parser's proximity clauses. */
function isProximity(c: Clause): c is PhraseClause {
  return c.kind === "phrase" && c.weight !== undefined;
}

/**
 * Keeps a long query's most informative optional words: when it has more
 * than `maxTerms` optional term clauses, only the `maxTerms` with the
 * largest weight × idf (the most a clause can add to any document's score,
 * up to BM25's constant tf factor; the idf it is scored with, from the
 * global statistics) are kept, in their original order; ties go to the earlier
 * word. Required, excluded, phrase and prefix clauses are always kept,
 * except the proximity clauses (weighted phrases): only those between kept
 * words, and at most `maxTerms` of them.
 * Pure; the coordinator applies it once, with global statistics, so every
 * shard scores the same pruned query. Words that no document contains
 * (df 0) are dropped first: they cannot match.
 */
export function pruneQuery(
  query: ParsedQuery,
  stats: CollectionStats,
  maxTerms: number = MAX_SCORED_TERMS,
): ParsedQuery {
  const terms = query.should.filter((c): c is TermClause => c.kind === "term");
  const near = query.should.filter(isProximity).length;
  if (terms.length <= maxTerms && near <= maxTerms) return query;
  const value = (c: TermClause): number => {
    // The idf the clause is scored with: a word over several fields uses
    // the largest per-field df (BM25F, see CombinedFieldScorer).
    let df = 0;
    for (const f of c.fields) {
      df = Math.max(df, stats.df[statKey(f, c.term)] ?? 0);
    }
    return df > 0 ? idf(stats.docCount, df) * (c.weight ?? 1) : 0;
  };
  const ranked = terms.length <= maxTerms
    ? terms.map((c) => ({ c }))
    : terms.map((c, i) => ({ c, i, v: value(c) }))
      .filter((x) => x.v > 0)
      .sort((a, b) => b.v - a.v || a.i - b.i)
      .slice(0, maxTerms);
  const keep = new Set(ranked.map((x) => x.c));
  const kept = new Set(ranked.map((x) => x.c.term));
  // A proximity clause goes with either of its words; at most maxTerms of
  // them stay (the first, in query order).
  let nearLeft = maxTerms;
  return {
    ...query,
    should: query.should.filter((c) =>
      c.kind === "term" ? keep.has(c) : !isProximity(c) ||
        (c.terms.every((t) => kept.has(t)) && nearLeft-- > 0)
    ),
  };
}
