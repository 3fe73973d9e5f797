/**
 * The JSON wire format of the tables API, one zod schema per message.
 *
 * Bytes in JSON: row keys, qualifiers and values are byte strings. By
 * default they travel as UTF-8 text (`"encoding":"utf8"`, what a user
 * typing `curl` expects); with `"encoding":"base64"` (a body field or the
 * `encoding` query parameter) every one of them is base64. An answer uses
 * the encoding asked for; when asked for UTF-8 but a row holds bytes that
 * are not valid UTF-8, that row comes back whole in base64 and says so
 * with `"encoding":"base64"`, never mangled.
 */
import { Buffer } from "node:buffer";
import { z } from "zod";
import { EdgeError } from "@strata/edge";
import { timeSeriesSpecSchema } from "./time_series.ts";

/** Limits every server applies. */
export const LIMITS = {
  /** Longest row key, bytes. */
  maxRowKeyBytes: 4096,
  /** Longest qualifier, bytes. */
  maxQualifierBytes: 1024,
  /** Largest value, bytes. */
  maxValueBytes: 1 << 20,
  /** Largest sum of keys, qualifiers and values of one row mutation, bytes. */
  maxMutationBytes: 4 << 20,
  /** Most mutations in one request. */
  maxMutations: 1000,
  /** Largest request body, bytes (base64 grows 4/3). */
  maxBodyBytes: 8 << 20,
  /** Largest scan `limit`. */
  maxScanLimit: 100_000,
} as const;

/** Table names: a letter, then letters, digits, `_`, `-`, `.` (at most 64). */
export const tableNameSchema = z.string().regex(
  /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/,
  "a table name starts with a letter and has at most 64 letters, digits, '_', '-', '.'",
);
/** Column family names: 1-64 letters, digits, `_`, `-`, `.`. */
export const familyNameSchema = z.string().regex(
  /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/,
  "a family name has 1-64 letters, digits, '_', '-', '.' and starts with a letter, digit or '_'",
);

/** How byte strings travel. */
export const encodingSchema = z.enum(["utf8", "base64"]).default("utf8");
/** `utf8` or `base64`. */
export type Encoding = z.infer<typeof encodingSchema>;

const utf8 = new TextDecoder("utf-8", { fatal: true });
const enc = new TextEncoder();

/**
 * A JSON string as bytes in `encoding`.
 * @throws EdgeError `bad_request` for invalid base64, `too_large` over `max`.
 */
export function toBytes(
  s: string,
  encoding: Encoding,
  what: string,
  max: number,
): Uint8Array {
  let bytes: Uint8Array;
  if (encoding === "base64") {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 === 1) {
      throw new EdgeError("bad_request", `${what} is not valid base64`);
    }
    bytes = new Uint8Array(Buffer.from(s, "base64"));
  } else bytes = enc.encode(s);
  if (bytes.length > max) {
    throw new EdgeError(
      what === "value" ? "too_large" : "bad_request",
      `${what} is ${bytes.length} bytes; the limit is ${max}`,
    );
  }
  return bytes;
}

/** Bytes as base64. */
export const b64 = (bytes: Uint8Array): string =>
  Buffer.from(bytes).toString("base64");
/** Base64 as bytes. */
export const fromB64 = (s: string): Uint8Array =>
  new Uint8Array(Buffer.from(s, "base64"));

/** Bytes as a JSON string in `encoding`, or undefined when not valid UTF-8. */
export function renderBytes(
  bytes: Uint8Array,
  encoding: Encoding,
): string | undefined {
  if (encoding === "base64") return b64(bytes);
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

const timestampSchema = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** One mutation of a row, as JSON. */
export const mutationJson = z.discriminatedUnion("op", [
  z.strictObject({
    op: z.literal("put"),
    family: familyNameSchema,
    qualifier: z.string(),
    value: z.string(),
    timestamp: timestampSchema.optional(),
  }),
  z.strictObject({
    op: z.literal("deleteCells"),
    family: familyNameSchema,
    qualifier: z.string(),
    timestamp: timestampSchema.optional(),
  }),
  z.strictObject({ op: z.literal("deleteFamily"), family: familyNameSchema }),
  z.strictObject({ op: z.literal("deleteRow") }),
]);
/** A mutation as JSON. */
export type MutationJson = z.infer<typeof mutationJson>;

/** `POST /v1/tables/:table/mutate`: a row mutation (atomic). */
export const mutateBody = z.strictObject({
  row: z.string(),
  encoding: encodingSchema,
  mutations: z.array(mutationJson).min(1).max(LIMITS.maxMutations),
});

/** `POST /v1/tables/:table/check-and-mutate`. */
export const checkAndMutateBody = z.strictObject({
  row: z.string(),
  encoding: encodingSchema,
  condition: z.strictObject({
    family: familyNameSchema,
    qualifier: z.string(),
    /** The cell's latest value must equal this; null: the cell must be absent. */
    equals: z.string().nullable(),
  }),
  mutations: z.array(mutationJson).min(1).max(LIMITS.maxMutations),
});

/** `columns=fam,fam:qual,...` as a query parameter. */
const columnsParam = z.string().max(8192).optional();

/** `GET /v1/tables/:table/row?key=…`. */
export const getRowQuery = z.object({
  key: z.string(),
  encoding: encodingSchema,
  columns: columnsParam,
  versions: z.coerce.number().int().min(1).max(10_000).optional(),
  asOf: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER)
    .optional(),
});

/** `GET /v1/tables/:table/scan?…`. */
export const scanQuery = getRowQuery.omit({ key: true }).extend({
  start: z.string().optional(),
  end: z.string().optional(),
  prefix: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(LIMITS.maxScanLimit).optional(),
  /** With asOf: the rows as they were at asOf (`compacted` 410 if GC passed it). */
  consistent: z.enum(["true", "1"]).optional(),
});

/** `POST /v1/tables/:table/hold`: hold GC on the tablet of `row` for a consistent read as of `asOf`. */
export const holdBody = z.strictObject({
  row: z.string(),
  encoding: encodingSchema,
  asOf: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  ms: z.number().int().min(0).max(3_600_000),
});

/** A column family of a schema. */
export const familySchema = z.strictObject({
  name: familyNameSchema,
  /** Keep at most this many versions of a cell. */
  maxVersions: z.number().int().min(1).max(10_000).optional(),
  /** Drop cells older than this, ms. */
  ttlMs: z.number().int().min(1).optional(),
});

/**
 * Where a table's tablets keep their data: `disk` (the default: an LSM
 * store with a commit log, in GFS or the storage root), `memory` (in the
 * serving process only: no files, no commit log; lost when that process
 * dies; handed over on an orderly move or split) or `write-behind`
 * (memory, plus a snapshot written every `snapshotMs` to the same storage:
 * a crash loses at most the writes of the last interval).
 */
export const storageModeSchema = z.enum(["disk", "memory", "write-behind"]);
/** A table's storage mode. */
export type StorageMode = z.infer<typeof storageModeSchema>;

/** A table's schema. */
export const tableSchemaJson = z.strictObject({
  name: tableNameSchema,
  families: z.array(familySchema).min(1).max(64).refine(
    (fs) => new Set(fs.map((f) => f.name)).size === fs.length,
    "family names must be distinct",
  ),
  /** Declared time-series: how points' row keys are made (see `time_series.ts`). */
  timeSeries: timeSeriesSpecSchema.optional(),
  /** Storage mode (default `disk`). */
  storage: storageModeSchema.optional(),
  /** `write-behind`: the snapshot interval, ms (default 1000). */
  snapshotMs: z.number().int().min(50).max(3_600_000).optional(),
}).refine(
  (s) =>
    s.timeSeries?.family === undefined ||
    s.families.some((f) => f.name === s.timeSeries!.family),
  "the time-series family must be one of the table's families",
);
/** A table schema. */
export type TableSchemaJson = z.infer<typeof tableSchemaJson>;

/** `POST /v1/tables` on the master. */
export const createTableBody = tableSchemaJson.extend({
  encoding: encodingSchema,
  /** Row keys to pre-split at: N keys give N+1 tablets. */
  splits: z.array(z.string()).max(1000).default([]),
});

/** A cell as JSON. */
export interface CellJson {
  family: string;
  qualifier: string;
  timestamp: number;
  value: string;
}

/** A row as JSON (`encoding` present only when base64 was forced). */
export interface RowJson {
  key: string;
  cells: CellJson[];
  encoding?: "base64";
}

/** A cell with its bytes. */
export interface CellBytes {
  family: string;
  qualifier: Uint8Array;
  timestamp: number;
  value: Uint8Array;
}

/**
 * A row as JSON in `encoding`; when UTF-8 was asked for but a byte string
 * is not valid UTF-8, the whole row in base64 (marked).
 */
export function renderRow(
  key: Uint8Array,
  cells: readonly CellBytes[],
  encoding: Encoding,
): RowJson {
  if (encoding === "utf8") {
    const k = renderBytes(key, "utf8");
    const out: CellJson[] = [];
    let ok = k !== undefined;
    for (const c of cells) {
      if (!ok) break;
      const q = renderBytes(c.qualifier, "utf8");
      const v = renderBytes(c.value, "utf8");
      if (q === undefined || v === undefined) ok = false;
      else {
        out.push({
          family: c.family,
          qualifier: q,
          timestamp: c.timestamp,
          value: v,
        });
      }
    }
    if (ok) return { key: k!, cells: out };
  }
  return {
    key: b64(key),
    cells: cells.map((c) => ({
      family: c.family,
      qualifier: b64(c.qualifier),
      timestamp: c.timestamp,
      value: b64(c.value),
    })),
    ...(encoding === "utf8" ? { encoding: "base64" as const } : {}),
  };
}
