/**
 * How a feed lies in its table (pure). One table per feed, `feed.<name>`:
 *
 * | row                          | cells                                         |
 * | ---------------------------- | --------------------------------------------- |
 * | `c`                          | `c:config` the feed's {@link FeedConfig} JSON |
 * | `g/<group>`                  | `g:<partition>` the group's committed offset  |
 * | `h/<partition>`              | `h:low` low watermark, `h:hint` a tail hint   |
 * | `m/<partition>/<offset>`     | `m:k` key, `m:v` value, `m:id` the producer's id of this append |
 *
 * Partitions are 4 decimal digits and offsets 16, zero-padded, so a
 * partition is one contiguous row range in offset order. The table is
 * pre-split at `m/` and at each partition's first row, so partitions
 * start on separate tablets.
 */
import { z } from "zod";

/** Most partitions a feed may have. */
export const MAX_PARTITIONS = 256;
/** Largest offset (2^53 − 1, within 16 decimal digits). */
export const MAX_OFFSET = Number.MAX_SAFE_INTEGER;

/** A feed's settings, stored in its `c` row. */
export const feedConfigSchema = z.strictObject({
  partitions: z.number().int().min(1).max(MAX_PARTITIONS),
  /** Messages older than this are deleted, ms. */
  retentionMs: z.number().int().min(1).optional(),
  /** Per partition, the oldest messages past this many bytes (key + value) are deleted. */
  retentionBytes: z.number().int().min(1).optional(),
});
/** A feed's settings. */
export type FeedConfig = z.infer<typeof feedConfigSchema>;

/** Feed and group names: what a table name allows, less room for `feed.`. */
export const feedNameSchema = z.string().regex(
  /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,58}$/,
  "a feed name is 1-59 of A-Z a-z 0-9 _ . - (not starting with . or -)",
);
/** A consumer group's name. */
export const groupNameSchema = z.string().regex(
  /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/,
  "a group name is 1-128 of A-Z a-z 0-9 _ . - (not starting with . or -)",
);

/** The table holding feed `name`. */
export const feedTable = (name: string): string => `feed.${name}`;

/** The table's column families (one version each). */
export const FEED_FAMILIES = [
  { name: "c" },
  { name: "g" },
  { name: "h" },
  { name: "m" },
];

const pad = (n: number, width: number) => String(n).padStart(width, "0");

/** Row of the feed's settings. */
export const CONFIG_ROW = "c";
/** Row of a partition's low watermark and tail hint. */
export const headRow = (p: number): string => `h/${pad(p, 4)}`;
/** Row of a consumer group's committed offsets. */
export const groupRow = (group: string): string => `g/${group}`;
/** First row of partition `p` (its rows are `[partitionStart(p), partitionEnd(p))`). */
export const partitionStart = (p: number): string => `m/${pad(p, 4)}/`;
/** End (exclusive) of partition `p`'s rows. */
export const partitionEnd = (p: number): string => `m/${pad(p, 4)}0`;
/** Row of message `offset` of partition `p`. */
export const messageRow = (p: number, offset: number): string =>
  `${partitionStart(p)}${pad(offset, 16)}`;

/** The split keys of a new feed table: control rows apart, one range per partition. */
export function feedSplits(partitions: number): string[] {
  const out = ["m/"];
  for (let p = 1; p < partitions; p++) out.push(partitionStart(p));
  return out;
}

const MESSAGE_ROW = /^m\/(\d{4})\/(\d{16})$/;
const dec = new TextDecoder();

/** The partition and offset of a message row, or undefined for another row. */
export function parseMessageRow(
  row: Uint8Array,
): { partition: number; offset: number } | undefined {
  const m = MESSAGE_ROW.exec(dec.decode(row));
  if (!m) return undefined;
  return { partition: Number(m[1]), offset: Number(m[2]) };
}

/**
 * The partition of a message key: FNV-1a (32-bit) of its bytes modulo the
 * partition count, so one key's messages stay in order in one partition.
 */
export function partitionOf(key: Uint8Array, partitions: number): number {
  let h = 0x811c9dc5;
  for (const b of key) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % partitions;
}

/** A decimal offset cell value. */
export const offsetBytes = (n: number): Uint8Array =>
  new TextEncoder().encode(String(n));

/** Reads a decimal offset cell value (undefined: absent or malformed). */
export function parseOffset(b: Uint8Array | undefined): number | undefined {
  if (b === undefined) return undefined;
  const s = dec.decode(b);
  if (!/^\d{1,16}$/.test(s)) return undefined;
  const n = Number(s);
  return n <= MAX_OFFSET ? n : undefined;
}
