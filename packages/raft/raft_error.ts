/** Machine-readable reasons a raft operation can fail. */
export type RaftErrorCode =
  | "compacted"
  | "unavailable"
  | "snapshot_out_of_date"
  | "proposal_dropped"
  | "not_leader"
  | "invalid_config"
  | "invariant";

/**
 * The only error the raft package throws. Callers switch on `code`:
 * `proposal_dropped` means retry later (no leader, leader transfer in
 * progress, uncommitted bytes over the bound); `compacted`/`unavailable`
 * come from {@link Storage} lookups; `invariant` is a safety check that
 * failed and always indicates a bug.
 */
export class RaftError extends Error {
  /** Why the operation failed. */
  readonly code: RaftErrorCode;

  /** Creates the error. @param code why it failed; @param message a sentence a person can act on. */
  constructor(code: RaftErrorCode, message: string) {
    super(message);
    this.name = "RaftError";
    this.code = code;
  }
}

/** True when `e` is a {@link RaftError}, optionally with the given code. */
export function isRaftError(e: unknown, code?: RaftErrorCode): e is RaftError {
  return e instanceof RaftError && (code === undefined || e.code === code);
}
