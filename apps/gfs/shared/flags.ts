import { parseArgs } from "node:util";
import { z } from "zod";

/**
 * Parses `--name value` flags (camelCase or kebab-case names) into an
 * object and validates it with `schema`; numbers are coerced by the schema.
 * @returns the parsed config, or prints a clear error and exits with 2.
 */
export function parseFlags<S extends z.ZodObject>(
  args: string[],
  schema: S,
  usage: string,
): z.infer<S> {
  let values: Record<string, unknown>;
  const options: Record<string, { type: "string" | "boolean" }> = {
    help: { type: "boolean" },
  };
  for (const key of Object.keys(schema.shape)) {
    options[key.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())] = {
      type: "string",
    };
  }
  try {
    const parsed = parseArgs({
      args,
      options,
      strict: true,
      allowPositionals: false,
    });
    values = Object.fromEntries(
      Object.entries(parsed.values).map((
        [k, v],
      ) => [k.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()), v]),
    );
  } catch (e) {
    fail(`${String(e)}\n${usage}`);
  }
  if (values.help) {
    console.log(usage);
    Deno.exit(0);
  }
  delete values.help;
  const r = schema.safeParse(values);
  if (!r.success) fail(`invalid flags: ${z.prettifyError(r.error)}\n${usage}`);
  return r.data;
}

function fail(msg: string): never {
  console.error(msg);
  Deno.exit(2);
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
