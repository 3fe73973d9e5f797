/**
 * The access checks every strata HTTP API runs before its handlers: the
 * URL's encoding, the `Host` header (against DNS rebinding), cross-site
 * browser requests on mutating methods (against CSRF), and the caller's
 * bearer token, whose role each route declares with {@link requireRole}.
 */
import type { Context, MiddlewareHandler } from "hono";
import { EdgeError } from "./edge_error.ts";
import { checkUrlEncoding } from "./request_input.ts";
import { type Role, roleAllows, ROLES } from "./roles.ts";

/** Bearer tokens and the role each grants; compared in constant time. */
export class TokenAuth {
  readonly #tokens: { role: Role; token: string }[] = [];

  /** @param tokens a token per role (a role without one grants nobody). */
  constructor(tokens: Partial<Record<Role, string>>) {
    for (const role of ROLES) {
      const t = tokens[role];
      if (t) this.#tokens.push({ role, token: t });
    }
  }

  /** The role a presented token grants, or undefined when it grants none. */
  roleOf(token: string): Role | undefined {
    let found: Role | undefined;
    // Check every token, so the time taken says nothing about which matched.
    for (const t of this.#tokens) {
      if (sameSecret(token, t.token) && !found) found = t.role;
    }
    return found;
  }
}

/**
 * `presented === secret` in time that depends only on the secret's length
 * (not on where the strings differ). A char loop rather than hashing both
 * sides and `timingSafeEqual`: in Deno, node:crypto's sha256 costs ~10 µs a
 * call, which was most of the guard's cost per request (bench:edge).
 */
export function sameSecret(presented: string, secret: string): boolean {
  let diff = presented.length ^ secret.length;
  for (let i = 0; i < secret.length; i++) {
    // Past the end of `presented`, charCodeAt is NaN, which `^` takes as 0;
    // the length check above already made `diff` non-zero then.
    diff |= presented.charCodeAt(i) ^ secret.charCodeAt(i);
  }
  return diff === 0;
}

/** Options of {@link edgeGuard}. */
export interface EdgeGuardOptions {
  /** The tokens, or "off" (only with an explicit flag: see resolveAccess). */
  auth: TokenAuth | "off";
  /** Host names (no port) this server answers to, or "any". */
  hosts: readonly string[] | "any";
  /** Paths anyone may GET without a token (e.g. "/healthz"). */
  publicPaths?: readonly string[];
  /**
   * Every GET/HEAD needs no token (a page and its event stream, which a
   * browser loads without headers); mutating routes still declare roles.
   */
  publicReads?: boolean;
  /** Where the caller finds a token, for the 401 message. */
  tokenHint?: string;
  /**
   * Also take a token as the password of `Authorization: Basic` (any user
   * name), and ask for it that way on a 401: a browser then prompts once
   * and sends it with every request of the page, its event streams
   * included. For pages served off loopback; cross-site mutating requests
   * are still refused (step 3), so the browser's cached password cannot
   * be used by another site to change anything.
   */
  basicAuth?: boolean;
  /**
   * The cluster's peer secret (`peer.secret`): a caller presenting it as
   * its bearer token is one of the cluster's own processes. It may call the
   * routes marked {@link requirePeer} (which no user token reaches) and
   * every other route, as admin.
   */
  peerSecret?: string;
}

const roles = new WeakMap<Request, Role>();
const hints = new WeakMap<Request, string>();
const basicChallenges = new WeakSet<Request>();
const peers = new WeakSet<Request>();

/** The `WWW-Authenticate` value for a 401 to this request. */
export function authChallenge(request: Request): string {
  return basicChallenges.has(request)
    ? 'Basic realm="strata", charset="UTF-8"'
    : 'Bearer realm="strata"';
}

/** The role the request's token granted ("admin" when auth is off), if any. */
export function callerRole(c: Context): Role | undefined {
  return roles.get(c.req.raw);
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** The host name of a `Host` header value (lower case, no port, IPv6 without brackets). */
export function hostName(host: string): string {
  const h = host.trim().toLowerCase();
  if (h.startsWith("[")) {
    return h.slice(1, h.indexOf("]") < 0 ? undefined : h.indexOf("]"));
  }
  const colon = h.lastIndexOf(":");
  return colon < 0 ? h : h.slice(0, colon);
}

/**
 * The middleware that runs first on every request:
 * 1. a path or query with malformed percent-encoding → 400 `bad_request`;
 * 2. a `Host` not among `hosts` → 421 `misdirected`;
 * 3. a mutating method (not GET/HEAD/OPTIONS) that a browser marks as
 *    cross-site (`Sec-Fetch-Site`) or whose `Origin` is another origin →
 *    403 `cross_origin`; a POST with a content type a page may send to
 *    any site without asking (text/plain, a form) → 415
 *    `unsupported_media_type` — such a "simple" request never commands;
 * 4. an `Authorization` header with an unknown token → 401; otherwise the
 *    token's role is remembered for {@link requireRole}, and every
 *    non-public route needs at least `read`.
 */
export function edgeGuard(options: EdgeGuardOptions): MiddlewareHandler {
  const hosts = options.hosts === "any" ? undefined : new Set(
    options.hosts.map((h) => h.replace(/^\[|\]$/g, "").toLowerCase()),
  );
  const publicPaths = new Set(options.publicPaths ?? []);
  const hint = options.tokenHint ??
    "send the header Authorization: Bearer <token>";
  const peerAuth = options.peerSecret === undefined
    ? undefined
    : new TokenAuth({ admin: options.peerSecret });
  // Not an async function (see settled): it runs on every request.
  return (c, next) => {
    const url = c.req.url;
    checkUrlEncoding(url);
    const hostHeader = c.req.header("host") ?? new URL(url).host;
    if (hosts && !hosts.has(hostName(hostHeader))) {
      throw new EdgeError(
        "misdirected",
        `this server does not answer to the host ${
          JSON.stringify(hostName(hostHeader).slice(0, 100))
        } (it answers to ${
          [...hosts].join(", ")
        }; add names with --allowed-hosts)`,
      );
    }
    if (!SAFE_METHODS.has(c.req.method)) checkSameOrigin(c, hostHeader);
    if (c.req.method === "POST") checkNotSimple(c);
    if (options.auth === "off") {
      roles.set(c.req.raw, "admin");
      peers.add(c.req.raw);
    } else {
      if (options.basicAuth) basicChallenges.add(c.req.raw);
      const header = c.req.header("authorization");
      if (header !== undefined) {
        const token = presentedToken(header, options.basicAuth ?? false);
        let role = token ? options.auth.roleOf(token) : undefined;
        if (!role && token && peerAuth?.roleOf(token)) {
          role = "admin";
          peers.add(c.req.raw);
        }
        if (!role) {
          throw new EdgeError(
            "unauthorized",
            token !== undefined
              ? /^Bearer/i.test(header)
                ? "the bearer token is not valid for this cluster"
                : "the Basic password is not a valid token for this cluster"
              : `the Authorization header must be: Bearer <token>${
                options.basicAuth
                  ? " (or Basic with the token as password)"
                  : ""
              }`,
          );
        }
        roles.set(c.req.raw, role);
      } else {
        // Only a request without a role needs the hint (for its 401): a
        // WeakMap entry fewer on every request that has one.
        hints.set(c.req.raw, hint);
      }
      const safe = SAFE_METHODS.has(c.req.method);
      if (
        !(safe && (options.publicReads ||
          (publicPaths.size > 0 && publicPaths.has(new URL(url).pathname))))
      ) {
        needRole(c, "read");
      }
    }
    return next().then(settled);
  };
}

/** The token of a Bearer header, or the password of a Basic one when allowed. */
function presentedToken(header: string, basic: boolean): string | undefined {
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (bearer) return bearer[1]!;
  const b = basic ? /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header) : null;
  if (!b) return undefined;
  let pair: string;
  try {
    pair = new TextDecoder("utf-8", { fatal: true }).decode(
      Uint8Array.from(atob(b[1]!), (ch) => ch.charCodeAt(0)),
    );
  } catch {
    return undefined;
  }
  const colon = pair.indexOf(":");
  return colon < 0 ? undefined : pair.slice(colon + 1);
}

function checkSameOrigin(c: Context, hostHeader: string): void {
  const site = c.req.header("sec-fetch-site");
  if (site === "cross-site" || site === "same-site") {
    throw new EdgeError(
      "cross_origin",
      `cross-site requests may not change anything (Sec-Fetch-Site: ${site})`,
    );
  }
  const origin = c.req.header("origin");
  if (origin === undefined) return;
  let originHost: string | undefined;
  try {
    originHost = new URL(origin).host;
  } catch {
    originHost = undefined;
  }
  if (originHost === undefined || originHost !== hostHeader.toLowerCase()) {
    throw new EdgeError(
      "cross_origin",
      `requests from another origin (${
        JSON.stringify(origin.slice(0, 100))
      }) may not change anything`,
    );
  }
}

/** The content types of a CORS "simple" request (sent cross-site without a preflight). */
const SIMPLE_TYPES = [
  "text/plain",
  "application/x-www-form-urlencoded",
  "multipart/form-data",
];

function checkNotSimple(c: Context): void {
  const type = c.req.header("content-type")?.split(";")[0]?.trim()
    .toLowerCase();
  if (type !== undefined && SIMPLE_TYPES.includes(type)) {
    throw new EdgeError(
      "unsupported_media_type",
      `a POST may not be sent as ${type} (a web page can send that to any site); send application/json`,
    );
  }
}

function needRole(c: Context, need: Role): void {
  const have = roles.get(c.req.raw);
  if (have === undefined) {
    throw new EdgeError(
      "unauthorized",
      `this route needs a token with the ${need} role: ${
        hints.get(c.req.raw) ?? "send Authorization: Bearer <token>"
      }`,
    );
  }
  if (!roleAllows(have, need)) {
    throw new EdgeError(
      "forbidden",
      `this route needs the ${need} role; the token has the ${have} role`,
    );
  }
}

/**
 * A route's declaration of the role it needs:
 * `app.post("/v1/x", requireRole("write"), handler)`. Answers 401 without
 * a token, 403 with a token of a lower role. Needs {@link edgeGuard} in
 * front of it (without it every request is 401).
 */
export function requireRole(role: Role): MiddlewareHandler {
  return (c, next) => {
    needRole(c, role);
    return next().then(settled);
  };
}

/**
 * What a middleware's promise resolves to once the handlers after it are
 * done: nothing, as from `async (c, next) => { await next(); }`. Hono's
 * compose catches a middleware's synchronous throw as it does a
 * rejection, and a plain function returning `next().then(settled)` makes
 * one promise per request where the async function made three (its own
 * and the await's), on the path of every request.
 */
const settled = (): void => {};

/**
 * A route only the cluster's own processes call (heartbeats, replication
 * between servers, commands from a master): the caller must present the
 * peer secret given to {@link edgeGuard} as `peerSecret`. Any user token,
 * admin included, gets 401 (passes when auth is off).
 */
export function requirePeer(): MiddlewareHandler {
  return async (c, next) => {
    if (!peers.has(c.req.raw)) {
      throw new EdgeError(
        "unauthorized",
        "this is an internal route of the cluster: it needs the cluster's peer secret (peer.secret in the auth dir), not a user token",
      );
    }
    await next();
  };
}
