/**
 * `TimeSeriesClient`: points of time-series tables through a
 * {@link TablesClient}. A table is declared time-series when created (its
 * schema carries the spec); each point (series, t) → value is one row
 * whose key `shared/time_series.ts` makes, with the value in one cell
 * (qualifier `v`) at timestamp `t`. Writing the same point again
 * overwrites that cell, so a write whose outcome was unknown is simply
 * sent again.
 */
import { Buffer } from "node:buffer";
import {
  decodePointKey,
  hashSplits,
  pointKey,
  rangeKeys,
  type TimeSeriesSpec,
  timeSeriesSpecSchema,
} from "../shared/time_series.ts";
import {
  type Bytes,
  type FamilySpec,
  type TablesClient,
  TablesClientError,
} from "./tables_client.ts";

/** A point read back. */
export interface Point {
  t: number;
  value: Uint8Array;
}

/** Options of {@link TimeSeriesClient.create}. */
export interface CreateTimeSeriesOptions extends Partial<TimeSeriesSpec> {
  /** Pre-split into this many tablets of equal hash range (default 1). */
  tablets?: number;
}

const QUALIFIER = "v";

/** Writes and range queries of time-series tables. */
export class TimeSeriesClient {
  readonly #specs = new Map<string, TimeSeriesSpec & { family: string }>();

  /** @param tables the client the rows go through. */
  constructor(private readonly tables: TablesClient) {}

  /** Creates a time-series table (families default to one, `v`). */
  async create(
    table: string,
    options: CreateTimeSeriesOptions = {},
    families: FamilySpec[] = [{ name: "v" }],
  ): Promise<void> {
    const { tablets = 1, ...given } = options;
    const spec = timeSeriesSpecSchema.parse(given);
    await this.tables.createTable(
      table,
      families,
      hashSplits(spec, tablets),
      { timeSeries: spec },
    );
  }

  /** The table's spec (cached). @throws TablesClientError `bad_request` when not time-series. */
  async spec(table: string): Promise<TimeSeriesSpec & { family: string }> {
    const have = this.#specs.get(table);
    if (have) return have;
    const schema = await this.tables.tableSchema(table);
    if (!schema.timeSeries) {
      throw new TablesClientError(
        "bad_request",
        `table ${table} is not a time-series table`,
      );
    }
    const spec = {
      ...schema.timeSeries,
      family: schema.timeSeries.family ?? schema.families[0]!.name,
    };
    this.#specs.set(table, spec);
    return spec;
  }

  /**
   * Writes `points` of `series` (default t: now), `concurrency` at a time.
   * A point whose write timed out is sent again (same row, same cell).
   */
  async write(
    table: string,
    series: string,
    points: { t?: number; value: Bytes }[],
    concurrency = 16,
  ): Promise<void> {
    const spec = await this.spec(table);
    let next = 0;
    const one = async (p: { t?: number; value: Bytes }) => {
      const t = p.t ?? Date.now();
      const key = pointKey(spec, series, t);
      for (let attempt = 0;; attempt++) {
        try {
          return await this.tables.put(
            table,
            key,
            spec.family,
            QUALIFIER,
            p.value,
            t,
          );
        } catch (e) {
          // Idempotent: the same point is the same cell.
          if (
            !(e instanceof TablesClientError) ||
            e.code !== "unknown_outcome" || attempt >= 3
          ) throw e;
        }
      }
    };
    await Promise.all(
      Array.from({ length: Math.min(concurrency, points.length) }, async () => {
        while (next < points.length) await one(points[next++]!);
      }),
    );
  }

  /**
   * The points of `series` with `from <= t < to`, in time order: per
   * bucket, its `spread` key ranges are scanned at once and merged.
   */
  async *range(
    table: string,
    series: string,
    from: number,
    to: number,
    options: { limit?: number } = {},
  ): AsyncGenerator<Point> {
    const spec = await this.spec(table);
    let left = options.limit ?? Infinity;
    for (const b of rangeKeys(spec, series, from, to)) {
      const parts = await Promise.all(b.ranges.map(async (r) => {
        const out: Point[] = [];
        for await (
          const row of this.tables.scan(table, {
            start: r.start,
            end: r.end,
            columns: [`${spec.family}:${QUALIFIER}`],
            ...(Number.isFinite(left) ? { limit: left } : {}),
          })
        ) {
          const cell = row.cells[0];
          if (!cell) continue;
          out.push({ t: decodePointKey(spec, row.key).t, value: cell.value });
        }
        return out;
      }));
      const points = parts.flat().sort((a, b) => a.t - b.t);
      for (const p of points) {
        if (left-- <= 0) return;
        yield p;
      }
    }
  }
}

/** A point's value as text. */
export const pointText = (p: Point): { t: number; value: string } => ({
  t: p.t,
  value: Buffer.from(p.value).toString("utf8"),
});
