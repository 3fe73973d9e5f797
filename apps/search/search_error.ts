/** Machine-readable reasons a search operation can fail. */
export type SearchErrorCode =
  | "bad_query"
  | "bad_request"
  | "bad_document"
  | "not_found"
  | "too_large"
  | "unsupported_media_type"
  | "corrupt_segment"
  | "unavailable"
  | "io";

/**
 * The one error class of `apps/search`. Callers (and the HTTP layer, which
 * maps `code` to a status: http_error_map.ts) switch on `code`, never on the message text.
 */
export class SearchError extends Error {
  /** Why the operation failed. */
  readonly code: SearchErrorCode;

  /** @param code why it failed; @param message a sentence a person can act on. */
  constructor(code: SearchErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "SearchError";
    this.code = code;
  }
}

/** True when `e` is a {@link SearchError}, optionally with the given code. */
export function isSearchError(
  e: unknown,
  code?: SearchErrorCode,
): e is SearchError {
  return e instanceof SearchError && (code === undefined || e.code === code);
}
