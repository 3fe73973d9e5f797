/** Machine-readable reasons a tablet operation fails. */
export type TabletErrorCode =
  /** A malformed mutation, read or schema (unknown family, bad timestamp, inverted range...): HTTP 400. */
  | "bad_request"
  /** A row key, value or mutation above its size limit: HTTP 413. */
  | "too_large"
  /** The row is outside the tablet's key range (the client's location is stale). */
  | "out_of_range"
  /** The tablet was closed. */
  | "closed"
  /**
   * A consistent read as of a time a GC compaction (or the tablet's
   * opening) may already have passed: cells it needs may be gone (HTTP 410).
   */
  | "compacted";

/** The error the tablet throws for expected failures; switch on `code`. */
export class TabletError extends Error {
  /** Why the operation failed. */
  readonly code: TabletErrorCode;

  /** @param code why; @param message a sentence a person can act on. */
  constructor(code: TabletErrorCode, message: string) {
    super(message);
    this.name = "TabletError";
    this.code = code;
  }
}

/** True when `e` is a {@link TabletError}, optionally with the given code. */
export function isTabletError(
  e: unknown,
  code?: TabletErrorCode,
): e is TabletError {
  return e instanceof TabletError && (code === undefined || e.code === code);
}
