/** Machine-readable reasons a playground request fails. */
export type PlaygroundErrorCode =
  | "bad_request"
  | "not_found"
  | "conflict"
  | "too_large"
  | "unavailable"
  | "timeout"
  | "port_taken"
  | "internal";

const STATUS: Record<PlaygroundErrorCode, number> = {
  bad_request: 400,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  unavailable: 503,
  timeout: 504,
  port_taken: 409,
  internal: 500,
};

/** The playground's one error class; `status` is the HTTP status it maps to. */
export class PlaygroundError extends Error {
  /** Why. */
  readonly code: PlaygroundErrorCode;

  /**
   * Makes an error with its code and message.
   * @param code why; @param message what a person can do about it.
   */
  constructor(code: PlaygroundErrorCode, message: string) {
    super(message);
    this.name = "PlaygroundError";
    this.code = code;
  }

  /** The HTTP status for this error. */
  get status(): number {
    return STATUS[this.code];
  }
}

/** True when `e` is a {@link PlaygroundError}, optionally with `code`. */
export function isPlaygroundError(
  e: unknown,
  code?: PlaygroundErrorCode,
): e is PlaygroundError {
  return e instanceof PlaygroundError &&
    (code === undefined || e.code === code);
}
