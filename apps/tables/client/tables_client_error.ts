/** What went wrong in a {@link TablesClient} call. */
export class TablesClientError extends Error {
  /**
   * The server's code (`not_serving`, `no_leader`, `bad_request`,
   * `not_found`, ...), or `unreachable` (nothing sent), `timeout`/`lost`
   * (sent, no answer), `unknown_outcome` (a write that may or may not have
   * been applied: not re-sent).
   */
  readonly code: string;
  /** HTTP status, 0 when no answer came. */
  readonly status: number;
  /** The error's other JSON fields. */
  readonly details?: Record<string, unknown>;

  /** @param code why; @param status HTTP status (0: none); @param details other fields. */
  constructor(
    code: string,
    message: string,
    status = 0,
    details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = "TablesClientError";
    this.code = code;
    this.status = status;
    if (details) this.details = details;
  }
}
