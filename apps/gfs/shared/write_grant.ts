import { Buffer } from "node:buffer";
import { createHmac, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import { GfsError } from "./gfs_error.ts";

/**
 * A write grant: the master's signed word that a new upload chunk exists
 * at `version` on `replicas`, leased to `primary` until `expiresAt`. The
 * master places the chunk, logs it and answers the client with a grant
 * instead of calling the chunkservers first; the client's bulk write
 * carries the grant along the chain, and every replica checks it before
 * it creates the chunk (the primary also takes the lease from it).
 *
 * The MAC is HMAC-SHA256 under the cell's peer secret (the secret the
 * bulk and data ports' handshakes prove), which users never hold: a
 * client can pass a grant on but not make or alter one. It covers every
 * field, so a grant is good only for its chunk, version, replica set,
 * file and lease time.
 */
export const WriteGrantSchema = z.object({
  handle: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  version: z.number().int().min(1),
  /** The file the chunk was allocated to. */
  fileId: z.number().int().min(1),
  /** The primary's base URL (the lease holder). */
  primary: z.string().url().max(2048),
  /** Every replica's base URL, the primary first. */
  replicas: z.array(z.string().url().max(2048)).min(1).max(16),
  /** The lease's end, ms on the master's wall clock (as every GFS lease). */
  expiresAt: z.number().int().min(0),
  /** HMAC-SHA256 of the fields above, hex. */
  mac: z.string().regex(/^[0-9a-f]{64}$/),
}).strict();

/** A write grant. */
export type WriteGrant = z.infer<typeof WriteGrantSchema>;

/** The signed fields of a grant. */
export type GrantFields = Omit<WriteGrant, "mac">;

function mac(secret: string, g: GrantFields): Buffer {
  const h = createHmac("sha256", secret);
  // One fixed order of fields: the MAC never depends on how JSON was keyed.
  h.update(
    JSON.stringify([
      "gfs-grant-v1",
      g.handle,
      g.version,
      g.fileId,
      g.primary,
      g.replicas,
      g.expiresAt,
    ]),
  );
  return h.digest();
}

/** Signs `fields` with the cell's peer secret. */
export function signGrant(secret: string, fields: GrantFields): WriteGrant {
  return { ...fields, mac: mac(secret, fields).toString("hex") };
}

/** What a replica checks a grant against. */
export interface GrantUse {
  /** The chunk and version the write names. */
  handle: number;
  version: number;
  /** This server's base URL. */
  self: string;
  /** The servers the write goes on to after this one. */
  chain: string[];
  /** Whether this server is the primary (the client's `write`), else a secondary (`forward`). */
  primary: boolean;
  /** Now, ms on this server's wall clock. */
  now: number;
  /**
   * This server already holds the chunk at the granted version (an
   * earlier piece created it): the grant's expiry no longer applies, as
   * the lease, extended through heartbeats, governs the primary's writes
   * from then on (a 64 MiB chunk's last piece may come after it).
   */
  held?: boolean;
}

/**
 * Checks that `g` is the master's (its MAC under `secret`), unexpired, and
 * for this write: the same chunk and version, this server in its replica
 * set (as the primary for a client's write), and the write's chain exactly
 * the replicas after this one (a primary that skipped one would acknowledge
 * a mutation a member of the lease lacks).
 * @throws GfsError `forbidden` (forged, or for another chunk, version,
 *   server or chain), `no_lease` (expired while the chunk is not held
 *   here yet: ask the master again).
 */
export function checkGrant(secret: string, g: WriteGrant, use: GrantUse): void {
  const got = Buffer.from(g.mac, "hex");
  const want = mac(secret, g);
  if (got.length !== want.length || !timingSafeEqual(got, want)) {
    throw new GfsError(
      "forbidden",
      `the write grant for chunk ${g.handle} is not signed by this cell's master`,
    );
  }
  if (g.handle !== use.handle || g.version !== use.version) {
    throw new GfsError(
      "forbidden",
      `the write grant is for chunk ${g.handle} v${g.version}, not chunk ${use.handle} v${use.version}`,
    );
  }
  const at = g.replicas.indexOf(use.self);
  if (at < 0 || (use.primary ? at !== 0 : at === 0)) {
    throw new GfsError(
      "forbidden",
      `the write grant for chunk ${g.handle} does not name ${use.self} as its ${
        use.primary ? "primary" : "secondary"
      }`,
    );
  }
  if (g.replicas[0] !== g.primary) {
    throw new GfsError("forbidden", "the write grant's primary is not first");
  }
  const after = use.primary ? g.replicas.slice(1) : use.chain;
  const rest = g.replicas.filter((u) => u !== g.primary && u !== use.self);
  const chainOk = use.primary
    ? sameList(use.chain, after)
    : use.chain.every((u) => rest.includes(u));
  if (!chainOk) {
    throw new GfsError(
      "forbidden",
      `the write's chain ${
        JSON.stringify(use.chain)
      } is not the grant's replicas after ${use.self}`,
    );
  }
  if (use.held !== true && g.expiresAt <= use.now) {
    throw new GfsError(
      "no_lease",
      `the write grant for chunk ${g.handle} expired ${
        use.now - g.expiresAt
      } ms ago; ask the master again`,
    );
  }
}

function sameList(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
