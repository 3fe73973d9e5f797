/**
 * The row keys of a time-series table (pure). A point is (series,
 * timestamp ms) → value; its row key is
 *
 * - with bucket hashing (default):
 *   `hash(bucket, salt):2 | bucket:8 | salt:1 | series | 00 | t:8`
 * - without: `bucket:8 | series | 00 | t:8`
 *
 * where `bucket = floor(t / bucketMs)` (a week by default) and `salt`
 * (0..spread-1) is a hash of (series, t), so the same point always lands
 * on the same row (a re-sent write does not add a row). Writes at "now"
 * all fall in one bucket; hashing spreads them over `spread` places of the
 * key space (and consecutive buckets elsewhere again), so tablets split
 * by key range — pre-split, or split by load — share them. Without
 * hashing every write at "now" lands at the end of one bucket's range.
 *
 * A range query (series, [from, to)) reads, per bucket in time order, the
 * `spread` key ranges of that series, and merges them by timestamp.
 */
import { z } from "zod";
import { hashKey } from "@strata/lsm";

/** A week, ms. */
export const WEEK_MS = 7 * 24 * 3600 * 1000;

/** How a table is declared time-series (part of its schema). */
export const timeSeriesSpecSchema = z.strictObject({
  /** Width of a time bucket, ms (default a week). */
  bucketMs: z.number().int().min(1000).max(2 ** 40).default(WEEK_MS),
  /** Spread a bucket's writes by a hash (default true). */
  hashing: z.boolean().default(true),
  /** Places a bucket's writes are spread over when hashing (default 16). */
  spread: z.number().int().min(1).max(256).default(16),
  /** Family holding the points' values (default: the table's first). */
  family: z.string().optional(),
});
/** A table's time-series declaration, defaults filled in. */
export type TimeSeriesSpec = z.output<typeof timeSeriesSpecSchema>;

/** Series names: 1-256 bytes of UTF-8, no NUL. */
export const seriesSchema = z.string().min(1).refine(
  (s) => !s.includes("\0") && new TextEncoder().encode(s).length <= 256,
  "a series name is 1-256 bytes of UTF-8 without NUL",
);

const enc = new TextEncoder();
const dec = new TextDecoder();

const u64 = (n: number): Uint8Array => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n));
  return b;
};

const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};
/** The 32-bit hash of the parts' bytes (the LSM's Bloom filter hash). */
const hash32 = (...parts: Uint8Array[]): number => hashKey(concat(...parts));

/** The key prefix of (bucket, salt): hash, bucket and salt, or the bucket alone. */
function prefix(spec: TimeSeriesSpec, bucket: number, salt: number) {
  const b = u64(bucket);
  if (!spec.hashing) return b;
  const h = hash32(b, Uint8Array.of(salt)) >>> 16;
  return concat(Uint8Array.of(h >>> 8, h & 0xff), b, Uint8Array.of(salt));
}

const checkTime = (t: number) => {
  if (!Number.isSafeInteger(t) || t < 0) {
    throw new RangeError(`a timestamp is an integer ms >= 0 (got ${t})`);
  }
};

/** The row key of the point (series, t). @throws RangeError for a bad t. */
export function pointKey(
  spec: TimeSeriesSpec,
  series: string,
  t: number,
): Uint8Array {
  checkTime(t);
  const s = enc.encode(series);
  const bucket = Math.floor(t / spec.bucketMs);
  const salt = spec.hashing ? hash32(s, u64(t)) % spec.spread : 0;
  return concat(prefix(spec, bucket, salt), s, Uint8Array.of(0), u64(t));
}

/** The series and timestamp of a point's row key. */
export function decodePointKey(
  spec: TimeSeriesSpec,
  key: Uint8Array,
): { series: string; t: number } {
  const head = spec.hashing ? 11 : 8;
  const t = Number(
    new DataView(key.buffer, key.byteOffset + key.length - 8, 8)
      .getBigUint64(0),
  );
  return { series: dec.decode(key.subarray(head, key.length - 9)), t };
}

/** The key ranges `[start, end)` holding one bucket's points of a series. */
export interface BucketRanges {
  bucket: number;
  ranges: { start: Uint8Array; end: Uint8Array }[];
}

/**
 * The key ranges holding the points of `series` with `from <= t < to`, one
 * entry per bucket in time order (each with `spread` ranges, or one
 * without hashing).
 */
export function rangeKeys(
  spec: TimeSeriesSpec,
  series: string,
  from: number,
  to: number,
): BucketRanges[] {
  checkTime(from);
  checkTime(to);
  if (to <= from) return [];
  const s = enc.encode(series);
  const out: BucketRanges[] = [];
  const first = Math.floor(from / spec.bucketMs);
  const last = Math.floor((to - 1) / spec.bucketMs);
  for (let bucket = first; bucket <= last; bucket++) {
    const lo = Math.max(from, bucket * spec.bucketMs);
    const hi = Math.min(to, (bucket + 1) * spec.bucketMs);
    const salts = spec.hashing ? spec.spread : 1;
    const ranges = Array.from({ length: salts }, (_, salt) => {
      const head = concat(prefix(spec, bucket, salt), s, Uint8Array.of(0));
      return { start: concat(head, u64(lo)), end: concat(head, u64(hi)) };
    });
    out.push({ bucket, ranges });
  }
  return out;
}

/**
 * Split keys that cut a hashed time-series table into `tablets` tablets
 * of equal hash range (none without hashing: where "now" is moves).
 */
export function hashSplits(
  spec: TimeSeriesSpec,
  tablets: number,
): Uint8Array[] {
  if (!spec.hashing || tablets < 2) return [];
  return Array.from({ length: tablets - 1 }, (_, i) => {
    const h = Math.floor(((i + 1) * 65536) / tablets);
    return Uint8Array.of(h >>> 8, h & 0xff);
  });
}
