/**
 * The state machine interface of the seed: what an application implements
 * to become replicated. Raft hands committed entries in index order;
 * `apply` must ignore indexes it has already applied (so replaying the log
 * after a restart is harmless), and snapshots capture the state at
 * `applied` (BeginSnapshot) while the log keeps growing; once the snapshot
 * is durable the log prefix is compacted (EndSnapshot).
 */
export interface ReplicatedStateMachine {
  /** Highest index applied (0 when empty). */
  readonly applied: number;
  /**
   * Applies the entry at `index`. `data` is empty for raft's own entries
   * (leader no-ops, membership changes), which only advance `applied`.
   */
  apply(index: number, data: Uint8Array): void;
  /** Serializes the state as of `applied`. */
  snapshot(): Uint8Array;
  /** Replaces the state with a snapshot taken at `index`. */
  restore(index: number, data: Uint8Array): void;
}
