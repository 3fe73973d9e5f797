import { z } from "zod";
import { LIMITS } from "./limits.ts";
import { TabletError } from "./tablet_error.ts";
import type {
  Condition,
  Mutation,
  ReadOptions,
  ScanOptions,
  TableSchema,
} from "./types.ts";
import type { FamilyPolicy } from "./version_gc.ts";

const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

/** zod schema of a {@link TableSchema} (names, unique families, GC policy). */
export const TableSchemaSchema = z.object({
  name: z.string().regex(
    NAME,
    "table names are [A-Za-z0-9_][A-Za-z0-9_.-]{0,63}",
  ),
  families: z.array(z.object({
    name: z.string().regex(
      NAME,
      "family names are [A-Za-z0-9_][A-Za-z0-9_.-]{0,63}",
    ),
    maxVersions: z.number().int().min(1).max(2 ** 31).optional(),
    ttlMs: z.number().int().min(1).max(LIMITS.maxTimestamp).optional(),
  })).min(1).max(256).refine(
    (fs) => new Set(fs.map((f) => f.name)).size === fs.length,
    "family names must be unique",
  ),
});

/**
 * Checks a schema and resolves each family's policy (maxVersions 1, no TTL
 * by default).
 *
 * @throws TabletError `bad_request`.
 */
export function parseSchema(
  schema: TableSchema,
): { schema: TableSchema; policies: Map<string, FamilyPolicy> } {
  const r = TableSchemaSchema.safeParse(schema);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new TabletError(
      "bad_request",
      `bad table schema: ${i.path.join(".") || "schema"}: ${i.message}`,
    );
  }
  const policies = new Map<string, FamilyPolicy>();
  for (const f of r.data.families) {
    policies.set(f.name, {
      maxVersions: f.maxVersions ?? 1,
      ttlMs: f.ttlMs ?? Infinity,
    });
  }
  return { schema: r.data, policies };
}

function bad(message: string): never {
  throw new TabletError("bad_request", message);
}

/** @throws TabletError `bad_request` or `too_large` for a bad row key. */
export function checkRowKey(row: unknown): asserts row is Uint8Array {
  if (!(row instanceof Uint8Array)) bad("the row key must be bytes");
  if (row.length === 0) bad("the row key must not be empty");
  if (row.length > LIMITS.rowKeyBytes) {
    throw new TabletError(
      "too_large",
      `row key of ${row.length} bytes exceeds ${LIMITS.rowKeyBytes}`,
    );
  }
}

function checkFamily(
  family: unknown,
  policies: Map<string, FamilyPolicy>,
  where: string,
): void {
  if (typeof family !== "string" || !policies.has(family)) {
    bad(`${where}: unknown column family ${JSON.stringify(family)}`);
  }
}

function checkQualifier(q: unknown, where: string): number {
  if (!(q instanceof Uint8Array)) bad(`${where}: qualifier must be bytes`);
  if (q.length > LIMITS.qualifierBytes) {
    throw new TabletError(
      "too_large",
      `${where}: qualifier of ${q.length} bytes exceeds ${LIMITS.qualifierBytes}`,
    );
  }
  return q.length;
}

function checkTimestamp(t: unknown, what: string): void {
  if (
    typeof t !== "number" || !Number.isSafeInteger(t) || t < 0
  ) {
    bad(`${what} must be an integer number of ms in [0, 2^53)`);
  }
}

/**
 * Checks a row mutation: known families, bytes where bytes belong,
 * timestamps, sizes (see {@link LIMITS}).
 *
 * @throws TabletError `bad_request` or `too_large`.
 */
export function checkMutations(
  mutations: unknown,
  policies: Map<string, FamilyPolicy>,
  allowEmpty = false,
): asserts mutations is Mutation[] {
  if (!Array.isArray(mutations)) bad("mutations must be a list");
  if (mutations.length === 0 && !allowEmpty) bad("no mutations");
  if (mutations.length > LIMITS.mutations) {
    throw new TabletError(
      "too_large",
      `${mutations.length} mutations exceed ${LIMITS.mutations}`,
    );
  }
  let bytes = 0;
  for (let i = 0; i < mutations.length; i++) {
    const m: Mutation = mutations[i];
    const where = `mutation ${i}`;
    if (typeof m !== "object" || m === null) bad(`${where} is not an object`);
    switch (m.op) {
      case "put":
        checkFamily(m.family, policies, where);
        bytes += checkQualifier(m.qualifier, where);
        if (!(m.value instanceof Uint8Array)) {
          bad(`${where}: value must be bytes`);
        }
        if (m.value.length > LIMITS.valueBytes) {
          throw new TabletError(
            "too_large",
            `${where}: value of ${m.value.length} bytes exceeds ${LIMITS.valueBytes}`,
          );
        }
        bytes += m.value.length;
        if (m.timestamp !== undefined) {
          checkTimestamp(m.timestamp, `${where}: timestamp`);
        }
        break;
      case "deleteCells":
        checkFamily(m.family, policies, where);
        bytes += checkQualifier(m.qualifier, where);
        if (m.timestamp !== undefined) {
          checkTimestamp(m.timestamp, `${where}: timestamp`);
        }
        break;
      case "deleteFamily":
        checkFamily(m.family, policies, where);
        break;
      case "deleteRow":
        break;
      default:
        bad(
          `${where}: op must be put, deleteCells, deleteFamily or deleteRow`,
        );
    }
  }
  if (bytes > LIMITS.mutationBytes) {
    throw new TabletError(
      "too_large",
      `row mutation of ${bytes} bytes exceeds ${LIMITS.mutationBytes}`,
    );
  }
}

/** @throws TabletError `bad_request` for a malformed condition. */
export function checkCondition(
  c: Condition,
  policies: Map<string, FamilyPolicy>,
): void {
  if (typeof c !== "object" || c === null) bad("condition must be an object");
  checkFamily(c.family, policies, "condition");
  checkQualifier(c.qualifier, "condition");
  if (c.equals !== null && !(c.equals instanceof Uint8Array)) {
    bad("condition: equals must be bytes or null");
  }
}

/** A scan bound: absent or bytes. */
function checkBytesOption(v: unknown, name: string): void {
  if (v !== undefined && !(v instanceof Uint8Array)) {
    bad(`${name} must be bytes`);
  }
}

/** @throws TabletError `bad_request` for bad read options. */
export function checkReadOptions(
  o: ReadOptions | ScanOptions,
  policies: Map<string, FamilyPolicy>,
): void {
  if (typeof o !== "object" || o === null) {
    bad("read options must be an object");
  }
  if (o.columns !== undefined) {
    if (!Array.isArray(o.columns)) bad("columns must be a list");
    o.columns.forEach((c, i) => {
      checkFamily(c?.family, policies, `column ${i}`);
      if (c.qualifier !== undefined) checkQualifier(c.qualifier, `column ${i}`);
    });
  }
  if (
    o.versions !== undefined &&
    (!Number.isSafeInteger(o.versions) || o.versions < 1)
  ) {
    bad("versions must be a positive integer");
  }
  if (o.asOf !== undefined) checkTimestamp(o.asOf, "asOf");
  const s = o as ScanOptions;
  // Field by field, not a loop over a list of names: every row read
  // passes here, and the list and its iterator were garbage each time.
  checkBytesOption(s.start, "start");
  checkBytesOption(s.end, "end");
  checkBytesOption(s.prefix, "prefix");
  if (
    s.limit !== undefined && (!Number.isSafeInteger(s.limit) || s.limit < 0)
  ) {
    bad("limit must be a non-negative integer");
  }
}
