/** Machine-readable reasons a codec operation can fail. */
export type CodecErrorCode =
  | "bad_magic"
  | "unsupported_version"
  | "checksum_mismatch"
  | "truncated"
  | "too_large"
  | "schema_violation"
  | "unknown_type";

/**
 * The only error the codec throws for bad bytes or bad values. Callers switch
 * on `code`, never on the message text.
 */
export class CodecError extends Error {
  /** Why the operation failed. */
  readonly code: CodecErrorCode;

  /** @param code why it failed; @param message a sentence a person can act on. */
  constructor(code: CodecErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CodecError";
    this.code = code;
  }
}

/** True when `e` is a {@link CodecError}, optionally with the given code. */
export function isCodecError(
  e: unknown,
  code?: CodecErrorCode,
): e is CodecError {
  return e instanceof CodecError && (code === undefined || e.code === code);
}
