/**
 * Who may call the search processes: the edge's guard with the cluster's
 * user tokens (read < write < admin) on the coordinator's public API, and
 * the peer secret (and nothing else) on the shards' internal routes, which
 * only the coordinator calls. Every process of a cluster shares one auth
 * dir (the launcher's); see the README's "Access" section.
 */
import {
  type Access,
  EDGE_FLAGS,
  EdgeConfigError,
  edgeGuard,
  type NodeTls,
  nodeTls,
  requirePeer,
  requireRole,
  resolveAccess,
} from "@strata/edge";
import type { MiddlewareHandler } from "hono";

/**
 * What a search app is guarded with (see `resolveAccess` in @strata/edge),
 * and the TLS it serves and trusts calling other processes (`nodeTls`).
 */
export type SearchAccess = Pick<Access, "auth" | "hosts" | "secrets"> & {
  tls?: NodeTls;
};

/** The edge guard of a search app: first on every request. */
export function searchGuard(access: SearchAccess): MiddlewareHandler {
  return edgeGuard({
    auth: access.auth,
    hosts: access.hosts,
    peerSecret: access.secrets?.peerSecret,
    tokenHint:
      "send Authorization: Bearer <token>; the tokens are admin.token, write.token and read.token in the cluster's auth dir (the data dir of `deno task search`)",
  });
}

/** Route guards: the role (or the peer secret) each route needs. */
export const need = {
  read: requireRole("read"),
  write: requireRole("write"),
  admin: requireRole("admin"),
  peer: requirePeer(),
};

/** The access and TLS flags of the search processes (the edge's). */
export const ACCESS_FLAGS = EDGE_FLAGS;

/** Usage lines of {@link ACCESS_FLAGS}. */
export const ACCESS_FLAGS_USAGE =
  `  --auth-dir DIR         where the tokens (admin|write|read.token) and peer.secret live,
                         created with mode 0600 on first start (default: the data dir;
                         every process of a cluster needs the same one)
  --insecure-no-auth     serve without tokens; only on a loopback address, never by default
  --allowed-hosts L      extra Host names to answer, comma-separated
  --tls-cert FILE        serve HTTPS with this PEM certificate (with --tls-key); every
                         process of a cluster needs TLS then
  --tls-key FILE         the certificate's PEM private key
  --ca-cert FILE         trust this PEM certificate calling the other processes over
                         TLS (default: the --tls-cert file)`;

/**
 * The access (and TLS files) of a process from its flags; exits 2 with the
 * reason when refused (`--insecure-no-auth` off loopback, unreadable TLS
 * files), 1 when the secrets cannot be read or created.
 */
export async function accessFromFlagsOrExit(
  flags: {
    "auth-dir"?: string;
    "insecure-no-auth": boolean;
    "allowed-hosts": string[];
    "tls-cert"?: string;
    "tls-key"?: string;
    "ca-cert"?: string;
  },
  listenHost: string,
  defaultDir: string,
  name: string,
): Promise<SearchAccess> {
  try {
    const access = await resolveAccess({
      listenHost,
      secretsDir: flags["auth-dir"] ?? defaultDir,
      insecureNoAuth: flags["insecure-no-auth"],
      allowedHosts: flags["allowed-hosts"],
    });
    const tls = await nodeTls(flags);
    if (access.auth === "off") {
      console.error(
        `${name}: auth is OFF (--insecure-no-auth): anyone who can reach ${listenHost} may search, index and delete`,
      );
    }
    return { ...access, tls };
  } catch (e) {
    console.error(`${name}: ${e instanceof Error ? e.message : e}`);
    Deno.exit(e instanceof EdgeConfigError ? 2 : 1);
  }
}
