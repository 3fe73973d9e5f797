/**
 * Flag parsing for entry points: `node:util` parseArgs for the syntax, a
 * zod object for the meaning (types, ranges, defaults), `-h/--help` for
 * the usage text — one way for every `deno task`.
 */
import { parseArgs } from "node:util";
import { z } from "zod";

/** What {@link parseFlags} found. */
export type FlagsResult<T> =
  | { kind: "ok"; flags: T; positionals: string[] }
  | { kind: "help"; text: string }
  | { kind: "error"; message: string };

type Def = { type: string; innerType?: z.ZodType; in?: z.ZodType };

/** The zod type under default/optional/nullable wrappers. */
function baseType(t: z.ZodType): string {
  let d = t._zod.def as unknown as Def;
  while (d.innerType && d.type !== "pipe") {
    d = d.innerType._zod.def as unknown as Def;
  }
  if (d.type === "pipe" && d.in) return baseType(d.in);
  return d.type;
}

/**
 * Parses `args` against a zod object whose keys are the long flag names:
 * boolean fields are switches, array fields repeatable, every other field a
 * string (use `z.coerce` for numbers). Unknown flags are errors, and so are
 * positionals unless `options.positionals` (then they are returned in order).
 */
export function parseFlags<S extends z.ZodObject>(
  args: readonly string[],
  schema: S,
  usage: string,
  parseOptions: { positionals?: boolean } = {},
): FlagsResult<z.output<S>> {
  const options: Record<
    string,
    { type: "string" | "boolean"; multiple?: boolean; short?: string }
  > = {
    help: { type: "boolean", short: "h" },
  };
  for (const [name, t] of Object.entries(schema.shape)) {
    const base = baseType(t as z.ZodType);
    options[name] = base === "boolean"
      ? { type: "boolean" }
      : base === "array"
      ? { type: "string", multiple: true }
      : { type: "string" };
  }
  let values: Record<string, unknown>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...args],
      options,
      strict: true,
      allowPositionals: parseOptions.positionals ?? false,
    }));
  } catch (e) {
    return {
      kind: "error",
      message: e instanceof Error ? e.message : String(e),
    };
  }
  if (values.help) return { kind: "help", text: usage };
  delete values.help;
  const r = schema.safeParse(values);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const flag = issue.path.length ? `--${issue.path.join(".")}: ` : "";
    return { kind: "error", message: `${flag}${issue.message}` };
  }
  return { kind: "ok", flags: r.data, positionals };
}

/**
 * {@link parseFlags} for a `main`: prints the usage and exits 0 on
 * `--help`; prints the problem and the usage to stderr and exits 2 on an
 * error (never a stack trace).
 */
export function parseFlagsOrExit<S extends z.ZodObject>(
  args: readonly string[],
  schema: S,
  usage: string,
): z.output<S> {
  // No positionals here: a stray word (a flag missing its dashes) is an error.
  return orExit(parseFlags(args, schema, usage), usage).flags;
}

/** {@link parseFlagsOrExit} for commands that take positionals too. */
export function parseFlagsAndPositionalsOrExit<S extends z.ZodObject>(
  args: readonly string[],
  schema: S,
  usage: string,
): { flags: z.output<S>; positionals: string[] } {
  return orExit(
    parseFlags(args, schema, usage, { positionals: true }),
    usage,
  );
}

function orExit<T>(
  r: FlagsResult<T>,
  usage: string,
): { flags: T; positionals: string[] } {
  if (r.kind === "help") {
    console.log(r.text);
    Deno.exit(0);
  }
  if (r.kind === "error") {
    console.error(`${r.message}\n\n${usage}`);
    Deno.exit(2);
  }
  return { flags: r.flags, positionals: r.positionals };
}

/** `host:port` (a name, IPv4, or [IPv6]) as a flag value. */
export const hostPortFlag = z.string().regex(
  /^(\[[0-9a-fA-F:.]+\]|[^\s:/\[\]]+):\d{1,5}$/,
  "expected host:port",
);

/** A listen address (`--host`): an IPv4/IPv6 literal or a host name. */
export const hostFlag = z.string().min(1).max(253).regex(
  /^[A-Za-z0-9.:\-\[\]%]+$/,
  "expected an IP address or host name",
);

/**
 * The access flags of {@link EDGE_FLAGS} alone (`--auth-dir`,
 * `--insecure-no-auth`, `--allowed-hosts`), for entry points that serve
 * plain HTTP only.
 */
export const EDGE_AUTH_FLAGS = {
  "auth-dir": z.string().min(1).optional(),
  "insecure-no-auth": z.boolean().default(false),
  "allowed-hosts": z.string().optional().transform((s) =>
    s === undefined ? [] : s.split(",").map((h) => h.trim()).filter(Boolean)
  ),
};

/**
 * The edge's flags, shared by every HTTP entry point; spread into an
 * app's flag schema: `z.object({ ...EDGE_FLAGS, id: ... })`.
 */
export const EDGE_FLAGS = {
  ...EDGE_AUTH_FLAGS,
  "tls-cert": z.string().min(1).optional(),
  "tls-key": z.string().min(1).optional(),
  "ca-cert": z.string().min(1).optional(),
};

/** Usage lines of {@link EDGE_FLAGS}, for an app's help text. */
export const EDGE_FLAGS_USAGE =
  `  --auth-dir DIR      where the tokens (admin|write|read.token) and peer.secret live,
                      generated with mode 0600 on first start (default: the data dir)
  --insecure-no-auth  serve without tokens; only on a loopback address, never by default
  --allowed-hosts L   extra Host names to answer, comma-separated (default: loopback
                      names and the listen address)
  --tls-cert FILE     serve HTTPS with this PEM certificate (with --tls-key)
  --tls-key FILE      the certificate's PEM private key
  --ca-cert FILE      trust this PEM certificate when calling other nodes over TLS
                      (default with --tls-cert: that certificate, for a cluster
                      sharing one self-signed certificate)`;

/** The TLS files of parsed {@link EDGE_FLAGS}, or undefined. @throws Error when only one is given. */
export function tlsFiles(
  flags: { "tls-cert"?: string; "tls-key"?: string },
): { certFile: string; keyFile: string } | undefined {
  const cert = flags["tls-cert"];
  const key = flags["tls-key"];
  if (cert === undefined && key === undefined) return undefined;
  if (cert === undefined || key === undefined) {
    throw new Error("--tls-cert and --tls-key go together");
  }
  return { certFile: cert, keyFile: key };
}
