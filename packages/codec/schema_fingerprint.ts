import { createHash } from "node:crypto";
import type { z } from "zod";

type Def = Record<string, unknown> & { type: string; checks?: unknown[] };

function defOf(schema: unknown): Def {
  return (schema as { _zod: { def: Def } })._zod.def;
}

/** Primitive parameters of a zod check (`min_length` 3, `number_format` safeint). */
function describeCheck(check: unknown): unknown {
  const def = (check as { _zod?: { def?: Record<string, unknown> } })._zod
    ?.def;
  if (!def) return "?";
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(def).sort()) {
    const v = def[k];
    if (
      typeof v === "string" || typeof v === "number" || typeof v === "boolean"
    ) out[k] = v;
    else if (v instanceof RegExp) out[k] = v.source;
  }
  return out;
}

/**
 * A canonical, JSON-ready description of a zod schema: its type, field
 * names in declaration order, element types, literal values and checks.
 * Two schemas that accept different values describe differently (custom
 * predicates, such as `z.instanceof`, only as "custom").
 */
export function describeSchema(schema: z.ZodType): unknown {
  return describe(schema, new Set());
}

function describe(schema: unknown, seen: Set<unknown>): unknown {
  if (seen.has(schema)) return { type: "cycle" };
  seen.add(schema);
  try {
    const def = defOf(schema);
    const out: Record<string, unknown> = { type: def.type };
    if (def.checks?.length) out.checks = def.checks.map(describeCheck);
    switch (def.type) {
      case "object": {
        const shape = def.shape as Record<string, unknown>;
        out.fields = Object.keys(shape).map((k) => [
          k,
          describe(shape[k], seen),
        ]);
        if (def.catchall) out.catchall = describe(def.catchall, seen);
        break;
      }
      case "array":
      case "set":
        out.element = describe(def.element ?? def.valueType, seen);
        break;
      case "record":
      case "map":
        out.key = describe(def.keyType, seen);
        out.value = describe(def.valueType, seen);
        break;
      case "tuple":
        out.items = (def.items as unknown[]).map((s) => describe(s, seen));
        if (def.rest) out.rest = describe(def.rest, seen);
        break;
      case "union":
        out.options = (def.options as unknown[]).map((s) => describe(s, seen));
        if (def.discriminator) out.discriminator = def.discriminator;
        break;
      case "intersection":
        out.left = describe(def.left, seen);
        out.right = describe(def.right, seen);
        break;
      case "literal":
        out.values = (def.values as unknown[]).map((v) =>
          typeof v === "bigint" ? `${v}n` : v
        );
        break;
      case "enum":
        out.entries = Object.entries(def.entries as Record<string, unknown>)
          .sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0);
        break;
      case "optional":
      case "nullable":
      case "readonly":
      case "nonoptional":
      case "default":
      case "prefault":
      case "catch":
        out.inner = describe(def.innerType, seen);
        break;
      case "pipe":
        out.in = describe(def.in, seen);
        out.out = describe(def.out, seen);
        break;
      case "lazy":
        out.inner = describe((def.getter as () => unknown)(), seen);
        break;
    }
    return out;
  } finally {
    seen.delete(schema);
  }
}

/**
 * A stable SHA-256 (hex) over named schemas. Sorting by name makes the
 * order of definitions in source irrelevant; field order, names and types
 * all count, so two peers with equal fingerprints decode each other's bytes.
 */
export function schemaFingerprint(
  named: ReadonlyArray<{ name: string; schema: z.ZodType }>,
): string {
  const canonical = [...named]
    .sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
    .map((m) => [m.name, describeSchema(m.schema)]);
  return createHash("sha256").update(JSON.stringify(canonical)).digest("hex");
}
