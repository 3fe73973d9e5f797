/**
 * What {@link ReplicatedNode} drives: a deterministic state machine fed
 * committed commands in log order. The same commands in the same order
 * must give every replica the same state and the same results. Unlike
 * `@strata/raft`'s ReplicatedStateMachine, `apply` returns the result the
 * proposer waits for.
 */
export interface CommandStateMachine<R> {
  /** Index of the last command applied (or skipped, or restored). */
  readonly appliedIndex: number;
  /**
   * Applies the command committed at `index` and returns what the
   * proposer's promise resolves with. Invalid commands must not throw:
   * return a result that says so (every replica must reach the same
   * verdict).
   */
  apply(index: number, command: Uint8Array): R;
  /** Consumes `index` without a command (elections' empty entries, membership changes). */
  skip(index: number): void;
  /** The whole state through {@link appliedIndex}, as bytes. */
  snapshot(): Uint8Array;
  /** Replaces the whole state with a snapshot taken at `index`. */
  restore(data: Uint8Array, index: number): void;
}
