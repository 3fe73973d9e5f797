/**
 * Turning a JSON row mutation into the tablet's terms: bytes decoded in
 * the request's encoding, families checked against the table's schema,
 * sizes checked against {@link LIMITS}. Every refusal is a 4xx EdgeError.
 * The bytes are views into a shared slab (`request_bytes.ts`): whoever
 * keeps them past the request copies them (the tablets do).
 */
import { EdgeError } from "@strata/edge";
import {
  type Encoding,
  LIMITS,
  type MutationJson,
  type TableSchemaJson,
} from "../shared/wire.ts";
import type { PortMutation, PortReadOptions } from "./tablet_port.ts";
import { requestBytes } from "./request_bytes.ts";

/** A row key in `encoding`. @throws EdgeError `bad_request`. */
export function rowKey(s: string, encoding: Encoding): Uint8Array {
  const key = requestBytes(s, encoding, "row key", LIMITS.maxRowKeyBytes);
  if (key.length === 0) {
    throw new EdgeError("bad_request", "the row key is empty");
  }
  return key;
}

function checkFamily(schema: TableSchemaJson, family: string): void {
  // A loop, not `some` with a closure: every mutation of every put asks.
  const families = schema.families;
  for (let i = 0; i < families.length; i++) {
    if (families[i]!.name === family) return;
  }
  throw new EdgeError(
    "bad_request",
    `table ${schema.name} has no column family ${
      JSON.stringify(family)
    } (families: ${families.map((f) => f.name).join(", ")})`,
  );
}

/**
 * The mutations of a request as the tablet takes them.
 * @throws EdgeError `bad_request` (unknown family, bad base64, long
 *   qualifier), `too_large` (a value or the whole row mutation too big).
 */
export function toMutations(
  schema: TableSchemaJson,
  key: Uint8Array,
  list: readonly MutationJson[],
  encoding: Encoding,
): PortMutation[] {
  let bytes = key.length;
  // A plain loop and objects built whole (a timestamp set afterwards, not
  // spread in): this runs for every put.
  const out: PortMutation[] = [];
  for (let i = 0; i < list.length; i++) {
    const m = list[i]!;
    if (m.op === "deleteRow") {
      out.push(m);
      continue;
    }
    checkFamily(schema, m.family);
    bytes += m.family.length;
    if (m.op === "deleteFamily") {
      out.push(m);
      continue;
    }
    const qualifier = requestBytes(
      m.qualifier,
      encoding,
      "qualifier",
      LIMITS.maxQualifierBytes,
    );
    bytes += qualifier.length;
    if (m.op === "deleteCells") {
      const d: PortMutation = {
        op: "deleteCells",
        family: m.family,
        qualifier,
      };
      if (m.timestamp !== undefined) d.timestamp = m.timestamp;
      out.push(d);
      continue;
    }
    const value = requestBytes(
      m.value,
      encoding,
      "value",
      LIMITS.maxValueBytes,
    );
    bytes += value.length;
    const p: PortMutation = { op: "put", family: m.family, qualifier, value };
    if (m.timestamp !== undefined) p.timestamp = m.timestamp;
    out.push(p);
  }
  if (bytes > LIMITS.maxMutationBytes) {
    throw new EdgeError(
      "too_large",
      `the row mutation is ${bytes} bytes; the limit is ${LIMITS.maxMutationBytes}`,
    );
  }
  return out;
}

/**
 * `columns=fam,fam:qual` as read options (qualifiers in `encoding`).
 * @throws EdgeError `bad_request` for an unknown family.
 */
export function toColumns(
  schema: TableSchemaJson,
  columns: string | undefined,
  encoding: Encoding,
): PortReadOptions["columns"] {
  if (columns === undefined || columns === "") return undefined;
  return columns.split(",").map((c) => {
    const i = c.indexOf(":");
    const family = i < 0 ? c : c.slice(0, i);
    checkFamily(schema, family);
    return i < 0 ? { family } : {
      family,
      qualifier: requestBytes(
        c.slice(i + 1),
        encoding,
        "qualifier",
        LIMITS.maxQualifierBytes,
      ),
    };
  });
}
