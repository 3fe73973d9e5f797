/**
 * The `deno run` arguments of one kv node process (`node_main.ts`), shared
 * by the local launcher and the cluster on network hosts, so a node flag
 * (auth, TLS, tick) is spelled in one place.
 */
import { readyLine } from "@strata/edge";

const NODE_MAIN = new URL("./node_main.ts", import.meta.url).pathname;

/** What a node is started with. */
export interface KvNodeArgs {
  id: number;
  /** The `--peers` list. */
  peers: string;
  dataDir: string;
  /** Shared auth dir (tokens, peer secret); undefined: `--insecure-no-auth`. */
  authDir?: string;
  /** `--listen` / `--http` (default: the node's own entry in `peers`). */
  listen?: string;
  http?: string;
  /** Start with `--join` (a member added by a configuration change). */
  join?: boolean;
  tickMs?: number;
  tls?: { certFile: string; keyFile: string };
  /** Flags for the Deno runtime (before the script). */
  denoFlags?: readonly string[];
  /** Further node flags. */
  extraArgs?: readonly string[];
}

/** The argument list of `deno` that runs the node. */
export function kvNodeArgs(o: KvNodeArgs): string[] {
  return [
    "run",
    "-A",
    ...(o.denoFlags ?? []),
    NODE_MAIN,
    "--id",
    String(o.id),
    "--peers",
    o.peers,
    "--data-dir",
    o.dataDir,
    ...(o.authDir !== undefined
      ? ["--auth-dir", o.authDir]
      : ["--insecure-no-auth"]),
    ...(o.tls
      ? ["--tls-cert", o.tls.certFile, "--tls-key", o.tls.keyFile]
      : []),
    ...(o.tickMs !== undefined ? ["--tick-ms", String(o.tickMs)] : []),
    ...(o.extraArgs ?? []),
    ...(o.join ? ["--join"] : []),
    ...(o.listen !== undefined ? ["--listen", o.listen] : []),
    ...(o.http !== undefined ? ["--http", o.http] : []),
  ];
}

/**
 * The node's ready line (`{"event":"ready","http","peer","scheme"}`, and
 * `"learner"` unless `--learner off`), for `spawnUntilReady`.
 */
export function kvNodeReady(
  line: unknown,
):
  | { http: string; peer: string; scheme: string; learner?: string }
  | undefined {
  const m = readyLine(line, ["http", "peer", "scheme"]);
  return m && {
    http: m.http,
    peer: m.peer,
    scheme: m.scheme,
    ...(typeof m.learner === "string" ? { learner: m.learner } : {}),
  };
}
