import type { z } from "zod";
import { CodecError } from "./codec_error.ts";

/**
 * Schema-derived positional structures: an object whose schema is a
 * `z.object` travels as a CBOR array of its field values in schema order,
 * recursively (also inside arrays, optionals and nullables). Field names are
 * never on the wire.
 *
 * Why not cbor-x's own record extension? Its structures are state shared
 * between an encoder and a decoder: a peer can redefine a slot inline and
 * change how later messages decode, and every new key shape grows the
 * encoder's transition table. Structures taken from the schema give the same
 * bytes saved with no state at all, and the schema fingerprint guarantees
 * both sides hold the same ones.
 */
export interface PositionalStructure {
  /** Turns a value of the schema into its wire form (arrays for objects). */
  toWire(value: unknown): unknown;
  /**
   * Turns a decoded wire form back into objects.
   * @throws CodecError `schema_violation` when an array has the wrong shape.
   */
  fromWire(wire: unknown): unknown;
}

type ZodInternals = {
  _zod: { def: Record<string, unknown> & { type: string } };
};

/** A wrong-shaped structure; the path is filled in on the way out. */
class ShapeError extends Error {
  path = "";
  constructor(readonly fields: number) {
    super("shape");
  }
}

// Paths are only built when decoding fails, never on the hot path.
function withPath(e: unknown, segment: string): unknown {
  if (e instanceof ShapeError) e.path = segment + e.path;
  return e;
}

/** Runs `fromWire` and turns a shape mismatch into a `CodecError`. */
export function fromWireChecked(
  structure: PositionalStructure,
  wire: unknown,
  name: string,
): unknown {
  try {
    return structure.fromWire(wire);
  } catch (e) {
    if (e instanceof ShapeError) {
      throw new CodecError(
        "schema_violation",
        `${name}${e.path}: expected a structure of ${e.fields} fields`,
      );
    }
    throw e;
  }
}

const RAW: PositionalStructure = {
  toWire: (v) => v,
  fromWire: (w) => w,
};

function defOf(schema: unknown): ZodInternals["_zod"]["def"] {
  return (schema as ZodInternals)._zod.def;
}

/** Builds the positional structure of a zod schema (computed once per type). */
export function positionalStructure(schema: z.ZodType): PositionalStructure {
  return build(schema, 0);
}

function build(schema: unknown, depth: number): PositionalStructure {
  // Recursive (lazy) schemas stop being positional past a fixed depth.
  if (depth > 32) return RAW;
  const def = defOf(schema);
  switch (def.type) {
    case "object":
      return objectStructure(
        def.shape as Record<string, unknown>,
        depth,
      );
    case "array": {
      const item = build(def.element, depth + 1);
      if (item === RAW) return RAW;
      return {
        toWire: (v) => Array.isArray(v) ? v.map((x) => item.toWire(x)) : v,
        fromWire: (w) => {
          if (!Array.isArray(w)) return w;
          const out = new Array(w.length);
          let i = 0;
          try {
            for (; i < w.length; i++) out[i] = item.fromWire(w[i]);
          } catch (e) {
            throw withPath(e, `[${i}]`);
          }
          return out;
        },
      };
    }
    case "optional":
    case "nullable":
    case "readonly": {
      const inner = build(def.innerType, depth + 1);
      if (inner === RAW) return RAW;
      return {
        toWire: (v) => v == null ? v : inner.toWire(v),
        fromWire: (w) => w == null ? w : inner.fromWire(w),
      };
    }
    default:
      return RAW;
  }
}

function objectStructure(
  shape: Record<string, unknown>,
  depth: number,
): PositionalStructure {
  const keys = Object.keys(shape);
  const fields = keys.map((k) => build(shape[k], depth + 1));
  const optional = keys.map((k) =>
    (shape[k] as { _zod: { def: { type: string } } })._zod.def.type ===
      "optional"
  );
  const n = keys.length;
  return {
    toWire(value) {
      if (value === null || typeof value !== "object") return value;
      const v = value as Record<string, unknown>;
      const out = new Array(n);
      for (let i = 0; i < n; i++) out[i] = fields[i]!.toWire(v[keys[i]!]);
      return out;
    },
    fromWire(wire) {
      if (!Array.isArray(wire) || wire.length !== n) {
        throw new ShapeError(n);
      }
      const out: Record<string, unknown> = {};
      let i = 0;
      try {
        for (; i < n; i++) {
          const w = wire[i];
          // Absent optional fields stay absent; any other field is present,
          // undefined or not (the wire cannot tell the two apart).
          if (w !== undefined) out[keys[i]!] = fields[i]!.fromWire(w);
          else if (!optional[i]) out[keys[i]!] = undefined;
        }
      } catch (e) {
        throw withPath(e, `.${keys[i]}`);
      }
      return out;
    },
  };
}
