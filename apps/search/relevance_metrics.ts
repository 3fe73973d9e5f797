/**
 * Standard ranked-retrieval metrics (as trec_eval computes them): average
 * precision and nDCG@k with linear gains. Pure.
 */

/** Graded judgements of one query: doc id → gain (> 0 means relevant). */
export type Judgements = ReadonlyMap<string, number>;

/**
 * Average precision of a ranking: the mean, over all relevant documents, of
 * the precision at the rank where each is retrieved (0 for those never retrieved).
 */
export function averagePrecision(
  ranking: readonly string[],
  judged: Judgements,
): number {
  let relevant = 0;
  for (const g of judged.values()) if (g > 0) relevant++;
  if (relevant === 0) return 0;
  let hits = 0;
  let sum = 0;
  ranking.forEach((id, i) => {
    if ((judged.get(id) ?? 0) > 0) {
      hits++;
      sum += hits / (i + 1);
    }
  });
  return sum / relevant;
}

/** nDCG@k: Σ gain/log2(rank+1) over the top k, divided by the same for the ideal ranking. */
export function ndcgAt(
  ranking: readonly string[],
  judged: Judgements,
  k: number,
): number {
  let dcg = 0;
  for (let i = 0; i < Math.min(k, ranking.length); i++) {
    dcg += (judged.get(ranking[i]!) ?? 0) / Math.log2(i + 2);
  }
  const ideal = [...judged.values()].filter((g) => g > 0).sort((a, b) => b - a)
    .slice(0, k);
  let idcg = 0;
  ideal.forEach((g, i) => idcg += g / Math.log2(i + 2));
  return idcg === 0 ? 0 : dcg / idcg;
}

/** MAP and mean nDCG@10 of a run over judged queries. */
export interface RunScores {
  map: number;
  ndcg10: number;
  queries: number;
}

/**
 * Scores a run: `rankings` and `qrels` keyed by query id; queries without
 * judgements are skipped; a judged query missing from the run scores 0.
 */
export function scoreRun(
  rankings: ReadonlyMap<string, readonly string[]>,
  qrels: ReadonlyMap<string, Judgements>,
): RunScores {
  let map = 0;
  let ndcg = 0;
  let n = 0;
  for (const [qid, judged] of qrels) {
    const ranking = rankings.get(qid) ?? [];
    map += averagePrecision(ranking, judged);
    ndcg += ndcgAt(ranking, judged, 10);
    n++;
  }
  return { map: n ? map / n : 0, ndcg10: n ? ndcg / n : 0, queries: n };
}
