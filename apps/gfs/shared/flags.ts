import { parseFlagsOrExit } from "@strata/edge";
import { z } from "zod";

/** `data-dir` → `dataDir`, at the type level. */
type Camel<S extends string> = S extends `${infer A}-${infer B}`
  ? `${A}${Capitalize<Camel<B>>}`
  : S;

/** An object's kebab-case keys in camelCase. */
export type CamelKeys<T> = {
  [K in keyof T as K extends string ? Camel<K> : K]: T[K];
};

/**
 * The edge's `parseFlagsOrExit` (`--help` prints the usage and exits 0; a
 * bad flag prints what is wrong and the usage and exits 2, never a stack),
 * with the flags' kebab-case names turned into the camelCase fields of
 * gfs's config objects.
 */
export function parseGfsFlags<S extends z.ZodObject>(
  args: readonly string[],
  schema: S,
  usage: string,
): CamelKeys<z.output<S>> {
  const flags = parseFlagsOrExit(args, schema, usage) as Record<
    string,
    unknown
  >;
  return Object.fromEntries(
    Object.entries(flags).map((
      [k, v],
    ) => [k.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()), v]),
  ) as CamelKeys<z.output<S>>;
}

/** A numeric flag (flags arrive as strings). */
export const num = z.coerce.number();

/** A size flag: bytes, or with a KiB/MiB/GiB suffix ("64MiB"). */
export const size = z.union([z.number(), z.string()]).transform((v, ctx) => {
  if (typeof v === "number") return v;
  const m = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|TiB)?$/i.exec(v.trim());
  if (m === null) {
    ctx.addIssue({
      code: "custom",
      message: `not a size: ${v} (e.g. 1048576, 64MiB)`,
    });
    return z.NEVER;
  }
  const mult: Record<string, number> = {
    b: 1,
    kib: 2 ** 10,
    mib: 2 ** 20,
    gib: 2 ** 30,
    tib: 2 ** 40,
  };
  return Math.round(Number(m[1]) * mult[(m[2] ?? "b").toLowerCase()]!);
});
