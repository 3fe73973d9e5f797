import type { z } from "zod";

/**
 * A schema reader turns a decoded wire value (objects as positional arrays,
 * see positional_structure.ts) into a validated value in one pass.
 *
 * Why not `fromWire` then `schema.safeParse`? Validation is most of a
 * decode's cost, and zod walks and copies the value a second time. The
 * reader is compiled from the same zod schema and checks the common cases
 * itself (objects, arrays, numbers with int/range checks, strings with
 * length checks, booleans, literals, enums, `z.instanceof`, optional,
 * nullable); any other schema node is handed to zod as is. It only ever
 * decides "valid" or "not valid": on "not valid" the caller runs zod to get
 * zod's own error message, so zod stays the single definition of the shape.
 */
export type SchemaReader = (wire: unknown) => unknown;

/** Thrown (and caught by the caller) when the fast path rejects a value. */
export const REJECT: unique symbol = Symbol("reject");

type Def = Record<string, unknown> & {
  type: string;
  checks?: Array<{ _zod: { def: Record<string, unknown> } }>;
};

function defOf(schema: unknown): Def {
  return (schema as { _zod: { def: Def } })._zod.def;
}

function reject(): never {
  throw REJECT;
}

/** Compiles a reader for `schema`. */
export function compileSchemaReader(schema: z.ZodType): SchemaReader {
  return compile(schema, 0);
}

/** A node the fast path does not know: zod parses it (its wire form is raw). */
function viaZod(schema: unknown): SchemaReader {
  const s = schema as z.ZodType;
  return (w) => {
    const r = s.safeParse(w);
    if (!r.success) reject();
    return r.data;
  };
}

function compile(schema: unknown, depth: number): SchemaReader {
  const def = defOf(schema);
  if (depth > 32) return viaZod(schema);
  switch (def.type) {
    case "object":
      return compileObject(schema, def, depth);
    case "array": {
      const item = compile(def.element, depth + 1);
      const len = lengthBounds(def);
      if (!len) return viaZod(schema);
      return (w) => {
        if (!Array.isArray(w) || w.length < len.min || w.length > len.max) {
          reject();
        }
        const out = new Array(w.length);
        for (let i = 0; i < w.length; i++) out[i] = item(w[i]);
        return out;
      };
    }
    case "optional": {
      const inner = compile(def.innerType, depth + 1);
      return (w) => w === undefined ? undefined : inner(w);
    }
    case "nullable": {
      const inner = compile(def.innerType, depth + 1);
      return (w) => w === null ? null : inner(w);
    }
    case "number":
      return compileNumber(schema, def);
    case "string": {
      const len = lengthBounds(def);
      if (!len) return viaZod(schema);
      return (w) => {
        if (typeof w !== "string" || w.length < len.min || w.length > len.max) {
          reject();
        }
        return w;
      };
    }
    case "boolean":
      if (def.checks?.length) return viaZod(schema);
      return (w) => typeof w === "boolean" ? w : reject();
    case "literal": {
      const values = new Set(def.values as unknown[]);
      return (w) => values.has(w) ? w : reject();
    }
    case "enum": {
      const values = new Set(Object.values(def.entries as object));
      return (w) => values.has(w) ? w : reject();
    }
    case "custom": {
      const fn = def.fn as (v: unknown) => unknown;
      if (def.checks?.length || typeof fn !== "function") return viaZod(schema);
      const slow = viaZod(schema);
      return (w) => {
        const ok = fn(w);
        if (ok === true) return w;
        if (ok === false) reject();
        return slow(w); // async or odd predicates: let zod decide
      };
    }
    default:
      return viaZod(schema);
  }
}

// Optional fields are added only when present, as zod does. Every other
// field is present even when undefined: the wire cannot tell "absent" from
// "undefined", and positional_structure.ts decodes it the same way.
const MAYBE_ABSENT = new Set(["optional"]);

function compileObject(schema: unknown, def: Def, depth: number): SchemaReader {
  if (def.checks?.length || def.catchall) return positionalViaZod(schema);
  const shape = def.shape as Record<string, unknown>;
  const keys = Object.keys(shape);
  if (keys.includes("__proto__")) {
    throw new Error("a message field may not be named __proto__");
  }
  const fields = keys.map((k) => compile(shape[k], depth + 1));
  const n = keys.length;
  // Generated code builds each object from one literal, so V8 gives every
  // decoded message the same hidden class; assigning keys in a loop would
  // leave objects in slow dictionary mode.
  const literal: string[] = [];
  const later: string[] = [];
  keys.forEach((k, i) => {
    const key = JSON.stringify(k);
    if (MAYBE_ABSENT.has(defOf(shape[k]).type)) {
      later.push(`v = f[${i}](w[${i}]); if (v !== undefined) o[${key}] = v;`);
    } else {
      literal.push(`${key}: f[${i}](w[${i}])`);
    }
  });
  const body = `return function read(w) {
    if (!Array.isArray(w) || w.length !== ${n}) reject();
    let v;
    const o = { ${literal.join(", ")} };
    ${later.join("\n")}
    return o;
  };`;
  return new Function("f", "reject", body)(fields, reject) as SchemaReader;
}

/** Objects with refinements: rebuild the object, then let zod check it. */
function positionalViaZod(schema: unknown): SchemaReader {
  const def = defOf(schema);
  const shape = def.shape as Record<string, unknown>;
  const keys = Object.keys(shape);
  const fields = keys.map((k) => compile(shape[k], 1));
  const s = schema as z.ZodType;
  return (w) => {
    if (!Array.isArray(w) || w.length !== keys.length) reject();
    const obj: Record<string, unknown> = {};
    for (let i = 0; i < keys.length; i++) {
      const v = fields[i]!(w[i]);
      if (v !== undefined) obj[keys[i]!] = v;
    }
    const r = s.safeParse(obj);
    if (!r.success) reject();
    return r.data;
  };
}

function lengthBounds(def: Def): { min: number; max: number } | undefined {
  let min = 0;
  let max = Infinity;
  for (const c of def.checks ?? []) {
    const d = c._zod.def;
    if (d.check === "min_length") min = Math.max(min, d.minimum as number);
    else if (d.check === "max_length") max = Math.min(max, d.maximum as number);
    else if (d.check === "length_equals") {
      min = Math.max(min, d.length as number);
      max = Math.min(max, d.length as number);
    } else return undefined;
  }
  return { min, max };
}

function compileNumber(schema: unknown, def: Def): SchemaReader {
  let int = false;
  let lo = -Infinity;
  let loIncl = true;
  let hi = Infinity;
  let hiIncl = true;
  const formats: unknown[] = [];
  if (def.format !== undefined) formats.push(def.format);
  for (const c of def.checks ?? []) {
    const d = c._zod.def;
    if (d.check === "number_format") formats.push(d.format);
    else if (d.check === "greater_than") {
      const v = d.value as number;
      if (v > lo || (v === lo && !d.inclusive)) {
        lo = v;
        loIncl = d.inclusive as boolean;
      }
    } else if (d.check === "less_than") {
      const v = d.value as number;
      if (v < hi || (v === hi && !d.inclusive)) {
        hi = v;
        hiIncl = d.inclusive as boolean;
      }
    } else return viaZod(schema);
  }
  for (const f of formats) {
    if (f === "safeint") int = true;
    else return viaZod(schema);
  }
  return (w) => {
    if (typeof w !== "number" || !Number.isFinite(w)) reject();
    if (int && !Number.isSafeInteger(w)) reject();
    if (loIncl ? w < lo : w <= lo) reject();
    if (hiIncl ? w > hi : w >= hi) reject();
    return w;
  };
}

const SCALARS = new Set([
  "number",
  "string",
  "boolean",
  "literal",
  "enum",
  "null",
  "undefined",
  "nan",
  "bigint",
]);

/**
 * Whether a value of `schema` can hold a byte string (a `Uint8Array` or
 * anything zod does not describe). Decoding copies its input only then.
 */
export function schemaMayHoldBytes(schema: z.ZodType): boolean {
  return mayHoldBytes(schema, 0);
}

function mayHoldBytes(schema: unknown, depth: number): boolean {
  if (depth > 32) return true;
  const def = defOf(schema);
  if (SCALARS.has(def.type)) return false;
  switch (def.type) {
    case "object":
      return Object.values(def.shape as Record<string, unknown>).some((f) =>
        mayHoldBytes(f, depth + 1)
      ) || def.catchall !== undefined;
    case "array":
      return mayHoldBytes(def.element, depth + 1);
    case "optional":
    case "nullable":
    case "readonly":
    case "default":
      return mayHoldBytes(def.innerType, depth + 1);
    case "union":
      return (def.options as unknown[]).some((o) => mayHoldBytes(o, depth + 1));
    default:
      return true;
  }
}
