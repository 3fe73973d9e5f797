/** Machine-readable reasons a replicated operation fails. */
export type ReplicationErrorCode =
  | "no_leader"
  | "timeout"
  | "unavailable"
  | "conflict"
  | "bad_request"
  | "not_found"
  | "internal";

/**
 * The error {@link ReplicatedNode} throws. `no_leader` carries the leader
 * hint (`details.leader`, `details.leaderHttp`) when one is known, so a
 * server can redirect the caller; `timeout` on a write means it may still
 * commit.
 */
export class ReplicationError extends Error {
  /** Why. */
  readonly code: ReplicationErrorCode;
  /** Leader hint and other fields for the caller. */
  readonly details?: { leader?: number; leaderHttp?: string };

  /**
   * Creates the error.
   * @param code why; @param message what a person can do about it.
   */
  constructor(
    code: ReplicationErrorCode,
    message: string,
    details?: { leader?: number; leaderHttp?: string },
  ) {
    super(message);
    this.name = "ReplicationError";
    this.code = code;
    this.details = details;
  }
}

/** True when `e` is a {@link ReplicationError}, optionally with `code`. */
export function isReplicationError(
  e: unknown,
  code?: ReplicationErrorCode,
): e is ReplicationError {
  return e instanceof ReplicationError &&
    (code === undefined || e.code === code);
}
