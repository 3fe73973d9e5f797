/** Machine-readable reasons a storage operation can fail. */
export type StorageErrorCode =
  /** Another process (or handle) owns the data directory. */
  | "locked"
  /** Bytes on disk fail their checksum or structure where loss is not allowed. */
  | "corrupt"
  /** The object was closed; open it again. */
  | "closed"
  /** No such record, needle or snapshot. */
  | "not_found"
  /** A record or needle exceeds the configured ceiling. */
  | "too_large"
  /** The volume is full or was marked read-only. */
  | "read_only"
  /** An argument is out of range (index outside the log, bad key). */
  | "bad_argument"
  /** The operating system refused an operation (disk full, permissions). */
  | "io";

/**
 * The only error the storage package throws for expected failures. Callers
 * switch on `code`, never on the message text.
 */
export class StorageError extends Error {
  /** Why the operation failed. */
  readonly code: StorageErrorCode;

  /** @param code why it failed; @param message a sentence a person can act on. */
  constructor(
    code: StorageErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "StorageError";
    this.code = code;
  }
}

/** True when `e` is a {@link StorageError}, optionally with the given code. */
export function isStorageError(
  e: unknown,
  code?: StorageErrorCode,
): e is StorageError {
  return e instanceof StorageError && (code === undefined || e.code === code);
}

/**
 * Wraps an operating-system failure as `io` (keeping it as the cause);
 * passes a {@link StorageError} through unchanged.
 */
export function asStorageError(e: unknown, what: string): StorageError {
  if (e instanceof StorageError) return e;
  const detail = e instanceof Error ? e.message : String(e);
  return new StorageError("io", `${what}: ${detail}`, { cause: e });
}
