/**
 * Where the tables service keeps its state in the kv service (strata's
 * Chubby): the first level of METADATA. Every key lives under `tables/`.
 *
 * - `tables/master` (a kv lock): held by the active master's session; its
 *   fencing token is the lock's create revision. Every write the master
 *   makes is a kv transaction comparing that revision, so a deposed master
 *   cannot change anything.
 * - `tables/master-address`: the active master's URL (bound to its session).
 * - `tables/schema/<table>`: a table's schema (JSON).
 * - `tables/tablets/<table>/<tablet id>`: one tablet's range, storage
 *   directory and assigned server (JSON, {@link TabletRecord}).
 * - `tables/retired/<table>/<tablet id>`: the storage path of a tablet a
 *   split, merge or table deletion retired (JSON `{dir}`), written in the
 *   same transaction, and of a split's or merge's new tablet from before
 *   the order is sent until the commit (which deletes it): the master has
 *   a server delete the store once no live tablet's manifest names it
 *   (halves share their parent's SSTables until they compact), then
 *   drops the key.
 * - `tables/servers/<server id>` (a kv lock and a key bound to the server's
 *   session): a live tablet server and its URL. The key vanishes when the
 *   session expires.
 *
 * The active master watches all of `tables/` ({@link TABLES_PREFIX}) and
 * runs a full reconcile pass on every change.
 */
import { z } from "zod";

/** Prefix of every key of the tables service. */
export const TABLES_PREFIX = "tables/";
/** Name of the kv lock the masters campaign on. */
export const MASTER_LOCK = "tables/master";
/** The kv key under which kv keeps a lock's holder (`_locks/` + name). */
export const MASTER_LOCK_KEY = "_locks/" + MASTER_LOCK;
/** The active master's address (bound to its session). */
export const MASTER_ADDRESS_KEY = "tables/master-address";
/** Prefix of table schemas. */
export const SCHEMA_PREFIX = "tables/schema/";
/** Prefix of tablet records. */
export const TABLET_PREFIX = "tables/tablets/";
/** Prefix of retired tablets' stores, waiting to be deleted. */
export const RETIRED_PREFIX = "tables/retired/";
/** The kv key of a retired tablet's store. */
export const retiredKey = (table: string, id: string): string =>
  `${RETIRED_PREFIX}${table}/${id}`;
/** The kv op that retires tablet `t`'s store (in a split's or merge's commit). */
export const retireOp = (t: { table: string; id: string; dir: string }) => ({
  op: "put" as const,
  key: retiredKey(t.table, t.id),
  value: JSON.stringify({ dir: t.dir }),
});
/** Prefix of live tablet servers. */
export const SERVER_PREFIX = "tables/servers/";

/** The kv key of a table's schema. */
export const schemaKey = (table: string): string => SCHEMA_PREFIX + table;
/** The kv key of a tablet record. */
export const tabletKey = (table: string, id: string): string =>
  `${TABLET_PREFIX}${table}/${id}`;
/** The kv key (and lock name) of a tablet server. */
export const serverKey = (id: string): string => SERVER_PREFIX + id;

/**
 * A tablet's storage path under the storage root (`<table>/<tablet id>`):
 * plain names only, so it never leaves the root.
 */
export const storageNameSchema = z.string().max(256).regex(
  /^[A-Za-z0-9_-][A-Za-z0-9_.-]*(\/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*$/,
  "a relative path of names (letters, digits, '_', '-', '.'; no '..')",
);

/** One tablet as METADATA records it (row keys base64, `end` null = +∞). */
export const tabletRecordSchema = z.strictObject({
  id: z.string().min(1).max(128),
  table: z.string().min(1).max(64),
  /** Inclusive first row key, base64 ("" = the start of the table). */
  start: z.string(),
  /** Exclusive end row key, base64; null = the end of the table. */
  end: z.string().nullable(),
  /** Storage path of the tablet, relative to the storage root. */
  dir: storageNameSchema,
  /** Id of the server it is assigned to; null while unassigned. */
  server: z.string().nullable(),
});
/** A tablet's METADATA record. */
export type TabletRecord = z.infer<typeof tabletRecordSchema>;

/** A live tablet server as it registers itself. */
export const serverRecordSchema = z.strictObject({
  id: z.string().min(1).max(64),
  /** `http://host:port` of its API. */
  url: z.string().min(1),
  /** Its kv session id. */
  session: z.number().int().positive(),
  /** `host:port` of its RESP listener (`--resp`), when it runs one. */
  resp: z.string().optional(),
});
/** A registered tablet server. */
export type ServerRecord = z.infer<typeof serverRecordSchema>;
