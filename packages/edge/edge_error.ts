/**
 * The one error envelope of every strata HTTP API:
 * `{"error":{"code","message", ...details}}` with the status its code maps to.
 */

/** Machine-readable reasons a request fails, and their HTTP statuses. */
export const ERROR_STATUS = {
  bad_request: 400,
  // App-specific 400s callers switch on (search: a query or a document it refuses).
  bad_query: 400,
  bad_document: 400,
  unauthorized: 401,
  forbidden: 403,
  cross_origin: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  compacted: 410,
  too_large: 413,
  unsupported_media_type: 415,
  misdirected: 421,
  internal: 500,
  bad_gateway: 502,
  no_leader: 503,
  unavailable: 503,
  timeout: 504,
} as const satisfies Record<string, number>;

/** One of the codes of {@link ERROR_STATUS}. */
export type EdgeErrorCode = keyof typeof ERROR_STATUS;

/** The JSON body of every error answer. */
export interface ErrorBody {
  error: { code: string; message: string; [detail: string]: unknown };
}

/**
 * An error a request handler throws to answer with a JSON error; the
 * edge's error handler turns it into `{"error":{"code","message"}}` with
 * {@link EdgeError.status}. Apps may subclass it with a narrower code type.
 */
export class EdgeError extends Error {
  /** Why, machine-readable. */
  readonly code: EdgeErrorCode;
  /** Extra fields for the JSON body (leader id, oldest revision, ...). */
  readonly details?: Record<string, unknown>;

  /**
   * @param code why; @param message what a person can do about it (shown
   * to the caller: never put secrets or exception text of unknown origin in it);
   * @param details extra JSON fields; @param cause kept as `Error.cause`.
   */
  constructor(
    code: EdgeErrorCode,
    message: string,
    details?: Record<string, unknown>,
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "EdgeError";
    this.code = code;
    this.details = details;
  }

  /** The HTTP status of this error's code. */
  get status(): number {
    return ERROR_STATUS[this.code];
  }

  /** The JSON body. */
  toJSON(): ErrorBody {
    return {
      error: { code: this.code, message: this.message, ...this.details },
    };
  }
}

/** True when `e` is an {@link EdgeError} (optionally of one code). */
export function isEdgeError(e: unknown, code?: EdgeErrorCode): e is EdgeError {
  return e instanceof EdgeError && (code === undefined || e.code === code);
}

/**
 * The code for an HTTP status a server answered with (for clients turning
 * an answer without a known code back into an error).
 */
export function codeForStatus(status: number): EdgeErrorCode {
  for (const [code, s] of Object.entries(ERROR_STATUS)) {
    if (s === status) return code as EdgeErrorCode;
  }
  return status >= 500 ? "unavailable" : "bad_request";
}
