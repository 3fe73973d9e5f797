import { parseArgs } from "node:util";
import { z } from "zod";

/** `--host`: the address to listen on (an IPv4/IPv6 literal or a host name). */
export const HostSchema = z.string().min(1).max(253).regex(
  /^[A-Za-z0-9.:\-\[\]%]+$/,
  "an IP address or host name",
);

/** Flags of a command: whether it is a string or a boolean, and its help line. */
export type FlagSpec = Record<
  string,
  { type: "string" | "boolean"; help: string }
>;

/**
 * Parses `args` for a command line tool: `--help`/`-h` prints `usage` and
 * the flags and exits 0; an unknown flag, a missing value or a value the
 * zod schema refuses prints one line and exits 2 (never a stack trace).
 */
export function parseFlags<S extends z.ZodType>(
  name: string,
  usage: string,
  spec: FlagSpec,
  schema: S,
  args: string[] = Deno.args,
): z.infer<S> {
  const help = () =>
    [
      usage,
      "",
      ...Object.entries(spec).map(([k, v]) =>
        `  --${k}${v.type === "string" ? " VALUE" : ""}`.padEnd(24) + v.help
      ),
      `  --help`.padEnd(24) + "this text",
    ].join("\n");
  let values: Record<string, unknown>;
  try {
    values = parseArgs({
      args,
      options: {
        ...Object.fromEntries(
          Object.entries(spec).map(([k, v]) => [k, { type: v.type }]),
        ),
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (e) {
    console.error(`${name}: ${(e as Error).message}\n\n${help()}`);
    Deno.exit(2);
  }
  if (values.help === true) {
    console.log(help());
    Deno.exit(0);
  }
  delete values.help;
  const parsed = schema.safeParse(values);
  if (!parsed.success) {
    console.error(
      `${name}: bad flags: ${
        parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`)
          .join("; ")
      }`,
    );
    Deno.exit(2);
  }
  return parsed.data;
}
