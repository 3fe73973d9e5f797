/**
 * `STRATA_V8_FLAGS`: extra V8 flags for the `deno run` children started by
 * {@link spawnUntilReady}, per kind of process, for A/B runs of V8 flags
 * on a whole stack without editing the launchers. Its value is
 * `<name prefix>=<flag>,<flag>;<name prefix>=…`, matched against the
 * child's name from the start (`tables server`, `chunkserver`, `master` for
 * a GFS master, `tables master`, `kv node`, `raft node`), e.g.
 * `STRATA_V8_FLAGS="tables server=--always-sparkplug;chunkserver=--max-lazy"`.
 * The flags join the child's own `--v8-flags=` (deno accepts it only once).
 */

/** Environment variable read by {@link withEnvV8Flags}. */
export const V8_FLAGS_ENV = "STRATA_V8_FLAGS";

/** The flags `spec` gives a child named `name` (every matching entry). */
export function v8FlagsFor(spec: string, name: string): string[] {
  const flags: string[] = [];
  for (const entry of spec.split(";")) {
    const eq = entry.indexOf("=");
    if (eq <= 0) continue;
    const prefix = entry.slice(0, eq).trim();
    if (!name.startsWith(prefix)) continue;
    flags.push(
      ...entry.slice(eq + 1).split(",").map((f) => f.trim())
        .filter((f) => f.startsWith("--")),
    );
  }
  return flags;
}

/**
 * `args` (of `deno run …`) with `flags` merged into its `--v8-flags=`
 * before the script, or added as one when it has none.
 */
export function withV8Flags(args: string[], flags: string[]): string[] {
  if (flags.length === 0 || args[0] !== "run") return args;
  const script = args.findIndex((a, i) => i > 0 && !a.startsWith("-"));
  const end = script < 0 ? args.length : script;
  const at = args.findIndex((a, i) => i < end && a.startsWith("--v8-flags="));
  if (at >= 0) {
    return args.map((a, i) => i === at ? `${a},${flags.join(",")}` : a);
  }
  return ["run", `--v8-flags=${flags.join(",")}`, ...args.slice(1)];
}

/** `args` with the flags {@link V8_FLAGS_ENV} gives a child named `name`. */
export function withEnvV8Flags(args: string[], name: string): string[] {
  const spec = Deno.env.get(V8_FLAGS_ENV);
  return spec ? withV8Flags(args, v8FlagsFor(spec, name)) : args;
}
