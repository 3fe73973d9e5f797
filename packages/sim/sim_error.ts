/** Machine-readable reasons a simulation fails. */
export type SimErrorCode =
  | "invariant"
  | "not_linearizable"
  | "divergence"
  | "no_progress"
  | "bad_argument";

/**
 * The error a simulation raises when a safety or liveness check fails. It
 * carries the seed, and `replay` is a one-line command that reproduces it.
 */
export class SimError extends Error {
  /** What failed. */
  readonly code: SimErrorCode;
  /** Seed of the failing run, when known. */
  seed?: number;
  /** Command that replays the run. */
  replay?: string;

  /** @param code what failed; @param message the details. */
  constructor(code: SimErrorCode, message: string) {
    super(message);
    this.name = "SimError";
    this.code = code;
  }
}

/** True when `e` is a {@link SimError}, optionally with the given code. */
export function isSimError(e: unknown, code?: SimErrorCode): e is SimError {
  return e instanceof SimError && (code === undefined || e.code === code);
}
