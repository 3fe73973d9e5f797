/**
 * The time-series panel's model (pure): the points of one series of a
 * time-series table, each with the tablet holding its row, grouped by
 * time bucket (in time order) and by tablet, and the busiest tablet's
 * share of the points against the mean over the table's tablets (the
 * issue's goal: no tablet above 1.5x the mean).
 */

/** A point of the series: its timestamp and the tablet holding its row (null: none known). */
export interface SeriesPoint {
  t: number;
  tablet: string | null;
}

/** A tablet of the table. */
export interface SeriesTablet {
  id: string;
  server: string | null;
}

/** One time bucket. */
export interface BucketView {
  bucket: number;
  /** Its first ms (Unix time). */
  startMs: number;
  points: number;
  /** Points per tablet id, for the tablets that hold some. */
  byTablet: Record<string, number>;
}

/** One tablet of the table. */
export interface SeriesTabletView {
  id: string;
  server: string | null;
  points: number;
  /** Its points over the mean per tablet (1 = even). */
  share: number;
}

/** The panel. */
export interface TimeSeriesView {
  table: string;
  series: string;
  bucketMs: number;
  points: number;
  /** Newest last, at most `maxBuckets`. */
  buckets: BucketView[];
  tablets: SeriesTabletView[];
  /** The tablet with the most points and its share (null: no points). */
  busiest: { tablet: string; share: number } | null;
}

/** The view of `points` in a table of `tablets` with buckets of `bucketMs`. */
export function timeSeriesView(
  input: {
    table: string;
    series: string;
    bucketMs: number;
    tablets: readonly SeriesTablet[];
    points: readonly SeriesPoint[];
  },
  maxBuckets = 12,
): TimeSeriesView {
  const byBucket = new Map<number, BucketView>();
  const perTablet = new Map<string, number>(
    input.tablets.map((t) => [t.id, 0]),
  );
  for (const p of input.points) {
    const bucket = Math.floor(p.t / input.bucketMs);
    let b = byBucket.get(bucket);
    if (!b) {
      byBucket.set(
        bucket,
        b = {
          bucket,
          startMs: bucket * input.bucketMs,
          points: 0,
          byTablet: {},
        },
      );
    }
    b.points++;
    if (p.tablet !== null) {
      b.byTablet[p.tablet] = (b.byTablet[p.tablet] ?? 0) + 1;
      perTablet.set(p.tablet, (perTablet.get(p.tablet) ?? 0) + 1);
    }
  }
  const total = [...perTablet.values()].reduce((a, b) => a + b, 0);
  const mean = perTablet.size === 0 ? 0 : total / perTablet.size;
  const servers = new Map(input.tablets.map((t) => [t.id, t.server]));
  const tablets = [...perTablet].map(([id, points]): SeriesTabletView => ({
    id,
    server: servers.get(id) ?? null,
    points,
    share: mean === 0 ? 0 : points / mean,
  }));
  const top = tablets.reduce<SeriesTabletView | null>(
    (best, t) => best === null || t.points > best.points ? t : best,
    null,
  );
  return {
    table: input.table,
    series: input.series,
    bucketMs: input.bucketMs,
    points: input.points.length,
    buckets: [...byBucket.values()].sort((a, b) => a.bucket - b.bucket)
      .slice(-maxBuckets),
    tablets,
    busiest: top === null || total === 0
      ? null
      : { tablet: top.id, share: top.share },
  };
}
