/**
 * Who may call a gfs process (master or chunkserver): the edge's guard
 * with the cell's tokens for users (read < write < admin) and its peer
 * secret for the cell's own processes (heartbeats, replication between
 * chunkservers, commands from the master). Every process of a cell shares
 * one auth dir (the launcher's); see the README's "Access" section.
 */
import {
  type ClusterSecrets,
  edgeGuard,
  nodeHttpClient,
  type NodeTls,
  nodeTls,
  requirePeer,
  requireRole,
  resolveAccess,
} from "@strata/edge";
import type { MiddlewareHandler } from "hono";
import { z } from "zod";

/** The access fields of a master's or chunkserver's config. */
export const AccessConfigFields = {
  /**
   * Where the tokens (`admin|write|read.token`) and `peer.secret` live,
   * created with mode 0600 on first start (default: the data dir). Every
   * process of a cell needs the same one.
   */
  authDir: z.string().min(1).optional(),
  /** No tokens at all: only on a loopback address, never by default. */
  insecureNoAuth: z.boolean().default(false),
  /** Host names to answer besides loopback and the listen address. */
  allowedHosts: z.array(z.string().min(1)).default([]),
  /** Serve HTTPS (and, on a replicated master, raft over TLS) with this PEM certificate. */
  tlsCert: z.string().min(1).optional(),
  /** The certificate's PEM private key. */
  tlsKey: z.string().min(1).optional(),
  /**
   * The PEM certificate other processes' certificates must chain to when this one calls
   * them over TLS (default: `tlsCert`, for a cell sharing one certificate).
   */
  caCert: z.string().min(1).optional(),
};

/** How a process guards its routes and calls its peers. */
export interface GfsAccess {
  /** The edge guard, first on every request. */
  guard: MiddlewareHandler;
  /** The token this process sends to the others (undefined: auth off). */
  peerToken?: string;
  /** The users' tokens and the peer secret (undefined: auth off), for the data port's handshake. */
  secrets?: ClusterSecrets;
  /** What it serves and trusts over TLS. */
  tls: NodeTls;
  /** Its fetch client for calls to the cell's other processes. */
  client?: Deno.HttpClient;
  /** "https" when it serves TLS. */
  scheme: "http" | "https";
}

/**
 * Reads (or creates) the secrets and the TLS files, and builds the guard.
 * @throws EdgeConfigError for `insecureNoAuth` off loopback, or TLS files
 *   that cannot be read.
 */
export async function resolveGfsAccess(cfg: {
  host: string;
  dataDir: string;
  authDir?: string;
  insecureNoAuth: boolean;
  allowedHosts: string[];
  tlsCert?: string;
  tlsKey?: string;
  caCert?: string;
}): Promise<GfsAccess> {
  const tls = await nodeTls({
    "tls-cert": cfg.tlsCert,
    "tls-key": cfg.tlsKey,
    "ca-cert": cfg.caCert,
  });
  const access = await resolveAccess({
    listenHost: cfg.host,
    secretsDir: cfg.authDir ?? cfg.dataDir,
    insecureNoAuth: cfg.insecureNoAuth,
    allowedHosts: cfg.allowedHosts,
  });
  if (access.auth === "off") {
    console.error(
      `gfs: auth is OFF (--insecure-no-auth): anyone who can reach ${cfg.host} may read, write and delete files`,
    );
  }
  return {
    guard: edgeGuard({
      ...access,
      peerSecret: access.secrets?.peerSecret,
      tokenHint:
        "send Authorization: Bearer <token>; the tokens are admin.token, write.token and read.token in the cell's auth dir (for `deno task gfs`, ./data/gfs)",
    }),
    peerToken: access.secrets?.peerSecret,
    secrets: access.secrets,
    tls,
    client: nodeHttpClient(tls),
    scheme: tls.serve ? "https" : "http",
  };
}

/** Route guards: the role (or the peer secret) each route needs. */
export const need = {
  read: requireRole("read"),
  write: requireRole("write"),
  admin: requireRole("admin"),
  peer: requirePeer(),
};
