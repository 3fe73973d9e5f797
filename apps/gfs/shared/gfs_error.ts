import { EdgeError, type EdgeErrorCode, type ErrorBody } from "@strata/edge";
import { isStorageError } from "@strata/storage";
import { z } from "zod";

/** Machine-readable reasons a GFS operation can fail. */
export type GfsErrorCode =
  /** The request or a flag is malformed (bad path, bad body, bad range). */
  | "bad_request"
  /** No such file, chunk or server. */
  | "not_found"
  /** The path exists, or conflicts with a file or directory. */
  | "conflict"
  /** The upload or record exceeds a configured limit. */
  | "too_large"
  /** The body's content type is not one the endpoint takes. */
  | "unsupported_media_type"
  /** No token, or one this cell does not know (or a user token on an internal route). */
  | "unauthorized"
  /** The request names a peer the server may not contact (not a registered chunkserver), or the token's role is too low. */
  | "forbidden"
  /** The requested byte range cannot be served. */
  | "range_not_satisfiable"
  /** Not enough live chunkservers (or replicas) to do it now. */
  | "unavailable"
  /** A chunk's version does not match (stale replica or lease). */
  | "stale"
  /** Bytes on disk failed their checksum. */
  | "corrupt"
  /** The chunkserver holds no valid lease for the chunk. */
  | "no_lease"
  /** A record append did not fit; retry on the next chunk. */
  | "chunk_full"
  /** This master does not lead (and knows no leader to redirect to): retry shortly. */
  | "not_leader"
  /** An unexpected failure inside the service. */
  | "internal";

const STATUS: Record<GfsErrorCode, number> = {
  bad_request: 400,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  unsupported_media_type: 415,
  unauthorized: 401,
  forbidden: 403,
  range_not_satisfiable: 416,
  unavailable: 503,
  stale: 409,
  corrupt: 500,
  no_lease: 409,
  chunk_full: 409,
  not_leader: 503,
  internal: 500,
};

/**
 * The only error the gfs app throws for expected failures; callers switch
 * on `code`. `status` is the HTTP status it maps to.
 */
export class GfsError extends Error {
  /** Why it failed. */
  readonly code: GfsErrorCode;

  /**
   * Creates the error.
   * @param code why; @param message a sentence a person can act on.
   */
  constructor(code: GfsErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "GfsError";
    this.code = code;
  }

  /** HTTP status for this error. */
  get status(): number {
    return STATUS[this.code];
  }

  /** The JSON error body every endpoint answers with. */
  toJSON(): { error: { code: GfsErrorCode; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}

/** True when `e` is a GfsError (with `code`, if given). */
export function isGfsError(e: unknown, code?: GfsErrorCode): e is GfsError {
  return e instanceof GfsError && (code === undefined || e.code === code);
}

/** Turns an error body `{error:{code,message}}` back into a GfsError. */
export function gfsErrorFromBody(status: number, body: unknown): GfsError {
  const err = (body as { error?: { code?: unknown; message?: unknown } })
    ?.error;
  const code = typeof err?.code === "string" && err.code in STATUS
    ? err.code as GfsErrorCode
    : status === 401
    ? "unauthorized"
    : status === 403
    ? "forbidden"
    : status === 404
    ? "not_found"
    : status === 413
    ? "too_large"
    : status >= 500
    ? "unavailable"
    : "bad_request";
  const message = typeof err?.message === "string"
    ? err.message
    : `HTTP ${status}`;
  return new GfsError(code, message);
}

/** The nearest edge code of each gfs code (for the edge's own bookkeeping only). */
const EDGE_CODE: Record<GfsErrorCode, EdgeErrorCode> = {
  bad_request: "bad_request",
  not_found: "not_found",
  conflict: "conflict",
  too_large: "too_large",
  unsupported_media_type: "unsupported_media_type",
  unauthorized: "unauthorized",
  forbidden: "forbidden",
  range_not_satisfiable: "bad_request",
  unavailable: "unavailable",
  stale: "conflict",
  corrupt: "internal",
  no_lease: "conflict",
  chunk_full: "conflict",
  not_leader: "no_leader",
  internal: "internal",
};

/**
 * A GfsError as the edge's error handler answers it. gfs's codes (`stale`,
 * `chunk_full`, `no_lease`, `not_leader`, `corrupt`, `range_not_satisfiable`)
 * are part of its wire protocol — clients and chunkservers switch on them —
 * and are not in the edge's code set, so this keeps gfs's code and status in
 * the envelope instead of narrowing them to an edge code.
 */
class GfsEdgeError extends EdgeError {
  readonly #gfs: GfsError;
  constructor(e: GfsError) {
    super(EDGE_CODE[e.code], e.message);
    this.#gfs = e;
  }
  override get status(): number {
    return this.#gfs.status;
  }
  override toJSON(): ErrorBody {
    return this.#gfs.toJSON();
  }
}

/**
 * The `map` of the edge's `installErrorHandlers` for gfs processes:
 * GfsError keeps its code and status, a zod error from a handler's own
 * parsing is 400, a storage checksum failure is `corrupt`; anything else is
 * left to the edge (a generic 500, its text logged, never sent).
 */
export function gfsToEdgeError(e: unknown): EdgeError | undefined {
  if (e instanceof GfsError) return new GfsEdgeError(e);
  if (e instanceof z.ZodError) {
    return new EdgeError("bad_request", z.prettifyError(e));
  }
  if (isStorageError(e) && e.code === "corrupt") {
    return new GfsEdgeError(new GfsError("corrupt", `storage: ${e.message}`));
  }
  return undefined;
}
