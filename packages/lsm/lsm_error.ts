/** Machine-readable reasons an LSM operation can fail. */
export type LsmErrorCode =
  /** A file fails its checksum or structure (an SSTable block, the manifest). */
  | "corrupt"
  /** The store was closed. */
  | "closed"
  /** A key, value or scan range is invalid. */
  | "bad_argument"
  /** A background flush or compaction failed; the store refuses writes. */
  | "failed";

/** The error the lsm package throws for expected failures; switch on `code`. */
export class LsmError extends Error {
  /** Why the operation failed. */
  readonly code: LsmErrorCode;

  /** @param code why; @param message a sentence a person can act on. */
  constructor(code: LsmErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "LsmError";
    this.code = code;
  }
}

/** True when `e` is an {@link LsmError}, optionally with the given code. */
export function isLsmError(e: unknown, code?: LsmErrorCode): e is LsmError {
  return e instanceof LsmError && (code === undefined || e.code === code);
}
