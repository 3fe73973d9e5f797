/**
 * Deciding, at start-up, how a listener guards itself: tokens from the
 * secrets directory (generated on first start), or — on loopback only,
 * and only when asked for with an explicit flag — no auth at all.
 */
import { TokenAuth } from "./access_guard.ts";
import { type ClusterSecrets, loadOrCreateSecrets } from "./auth_secrets.ts";

/** Names every listener answers to, whatever it binds. */
export const LOOPBACK_NAMES: readonly string[] = [
  "localhost",
  "127.0.0.1",
  "::1",
];

/** True for 127.0.0.0/8, ::1 and localhost. */
export function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** True for the wildcard addresses (every interface). */
export function isWildcard(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, "");
  return h === "0.0.0.0" || h === "::";
}

/** A refusal to start with an insecure configuration; the message says what to do. */
export class EdgeConfigError extends Error {
  /** @param message what was refused and how to fix it. */
  constructor(message: string) {
    super(message);
    this.name = "EdgeConfigError";
  }
}

/** Options of {@link resolveAccess}. */
export interface AccessOptions {
  /** The address the HTTP listener binds. */
  listenHost: string;
  /** Where the tokens and peer secret live (created 0600 on first start). */
  secretsDir: string;
  /** `--insecure-no-auth`: no tokens; refused unless `listenHost` is loopback. */
  insecureNoAuth?: boolean;
  /** `--allowed-hosts`: Host names to answer besides loopback and the listen host. */
  allowedHosts?: readonly string[];
}

/** What {@link resolveAccess} decided. */
export interface Access {
  /** The tokens, or "off". */
  auth: TokenAuth | "off";
  /** The secrets (undefined when auth is off). */
  secrets?: ClusterSecrets;
  /** Host names to answer, or "any" (a wildcard bind with no --allowed-hosts). */
  hosts: readonly string[] | "any";
}

/**
 * Decides the access policy of a listener.
 * @throws EdgeConfigError for `insecureNoAuth` on a non-loopback address.
 * @throws Error when the secrets cannot be read or created.
 */
export async function resolveAccess(options: AccessOptions): Promise<Access> {
  const hosts = allowedHosts(options.listenHost, options.allowedHosts);
  if (options.insecureNoAuth) {
    if (!isLoopback(options.listenHost)) {
      throw new EdgeConfigError(
        `refusing to listen on ${options.listenHost} without auth: --insecure-no-auth is only allowed on a loopback address (127.0.0.1, ::1); drop the flag to use the tokens in ${options.secretsDir}`,
      );
    }
    return { auth: "off", hosts };
  }
  const secrets = await loadOrCreateSecrets(options.secretsDir);
  return { auth: new TokenAuth(secrets.tokens), secrets, hosts };
}

/**
 * The Host names a listener answers to: loopback names, the listen host
 * and `extra`; "any" for a wildcard bind without `extra` (its names are
 * not known; tokens still guard it).
 */
export function allowedHosts(
  listenHost: string,
  extra: readonly string[] = [],
): readonly string[] | "any" {
  if (isWildcard(listenHost) && extra.length === 0) return "any";
  const names = new Set([...LOOPBACK_NAMES, ...extra]);
  if (!isWildcard(listenHost)) names.add(listenHost.replace(/^\[|\]$/g, ""));
  return [...names];
}
