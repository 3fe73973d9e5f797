/**
 * The tablet map in three levels, as BigTable lays it out: kv (strata's
 * Chubby) holds where the ROOT tablet is; the root tablet holds where the
 * other METADATA tablets are; the METADATA tablets hold where every user
 * tablet is. The METADATA table (root tablet included) is served by tablet
 * servers like any table. kv keeps every tablet's record too
 * (`tables/tablets/<table>/<id>`): it is the master's source of truth,
 * and the master writes the METADATA rows from it.
 *
 * Row key = a level byte (0x00 for a METADATA tablet's row, 0x01 for a
 * user tablet's), the table name, 0x00, then 0x01 + end key for a bounded
 * tablet or 0x02 for the last tablet of the table (end = +∞). Table names
 * have no 0x00, so the rows of one table are contiguous and sorted by end
 * key, and the tablet holding row `r` of table `T` is the first row whose
 * key is greater than `metaRowKey(T, r)`. The root tablet is METADATA's
 * first tablet, ["", 0x01): it holds exactly the level-0x00 rows and is
 * never split or merged, so the hierarchy stays at three levels.
 */
import { z } from "zod";
import type { TableSchemaJson } from "./wire.ts";

/** The METADATA table's name (reserved: users cannot create or delete it). */
export const META_TABLE = "METADATA";
/** Its one family; the location is the cell `loc:tablet`. */
export const META_FAMILY = "loc";
/** The qualifier of the location cell. */
export const META_QUALIFIER = "tablet";
/** The header carrying the master's fencing token on a METADATA write. */
export const META_FENCE_HEADER = "x-tables-fence";

/** The METADATA table's schema (one version of each location). */
export const META_SCHEMA: TableSchemaJson = {
  name: META_TABLE,
  families: [{ name: META_FAMILY, maxVersions: 1 }],
};

const enc = new TextEncoder();

/** The root tablet's (exclusive) end: the first user tablet's row. */
export const ROOT_END: Uint8Array = new Uint8Array([1]);

/** Whether a METADATA row key lies in the root tablet. */
export const inRoot = (key: Uint8Array): boolean =>
  key.length === 0 || key[0]! < ROOT_END[0]!;

/** Whether `t` is the root tablet (METADATA's first tablet). */
export const isRootTablet = (t: { table: string; start: string }): boolean =>
  t.table === META_TABLE && t.start === "";

/** `level T 0x00`: where the rows of table `T` begin. */
const tablePrefix = (table: string): Uint8Array =>
  new Uint8Array([table === META_TABLE ? 0 : 1, ...enc.encode(table), 0]);

/** The METADATA row key of the tablet of `table` ending at `end` (null = +∞). */
export function metaRowKey(table: string, end: Uint8Array | null): Uint8Array {
  return end === null
    ? new Uint8Array([...tablePrefix(table), 2])
    : new Uint8Array([...tablePrefix(table), 1, ...end]);
}

/**
 * Where to start scanning METADATA for the tablet holding `row` of
 * `table`: just past `metaRowKey(table, row)` (a tablet's end is exclusive,
 * so the tablet ending at `row` does not hold it).
 */
export function metaLookupStart(table: string, row: Uint8Array): Uint8Array {
  return new Uint8Array([...metaRowKey(table, row), 0]);
}

/** The (exclusive) end of the METADATA rows of `table`. */
export function metaTableEnd(table: string): Uint8Array {
  return new Uint8Array([...tablePrefix(table), 3]);
}

/** A METADATA location cell: the tablet's record and its server's URL (row keys base64). */
export const metaLocationSchema = z.strictObject({
  id: z.string().min(1).max(128),
  table: z.string().min(1).max(64),
  start: z.string(),
  end: z.string().nullable(),
  server: z.string().nullable(),
  /** The server's URL when it is live; null while unassigned. */
  url: z.string().nullable(),
});
/** What a METADATA row says about one tablet. */
export type MetaLocation = z.infer<typeof metaLocationSchema>;
