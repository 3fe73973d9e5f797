/**
 * The port through which the LSM engine's commit log goes: one record per
 * write batch, appended durably (concurrent appends share a sync: group
 * commit) and numbered by consecutive indexes; replayed after the records
 * the tables cover; dropped once a flush covers them. A local
 * implementation wraps `@strata/storage`'s SegmentedLog
 * ({@link LocalCommitLog}); the tables app keeps its logs in GFS.
 */
export interface CommitLog {
  /**
   * Called once, when the store opens: calls `apply` for every record
   * after `covered` (the records up to `covered` are in the tables), in
   * index order, then positions the log so that the next append gets an
   * index above both `covered` and the last record replayed.
   * @returns the index of the last record (`covered` when none is newer).
   */
  recover(
    covered: number,
    apply: (index: number, record: Uint8Array) => void,
  ): Promise<number>;
  /**
   * Appends records durably. Resolves in index order (a call that appended
   * later resolves later), with the index of the last record appended.
   */
  append(records: readonly Uint8Array[]): Promise<{ last: number }>;
  /**
   * Optional: appends at once, without a promise, when the log can (its
   * policy does not wait for a sync, nothing is queued), returning the
   * index of the last record, which is as durable as `append` would have
   * made it; undefined when it cannot (then nothing was appended: call
   * `append`). Appends made this way are in index order with the others.
   */
  appendNow?(records: readonly Uint8Array[]): { last: number } | undefined;
  /** The records up to `upTo` are in the tables: the log may drop them. */
  compactPrefix(upTo: number): Promise<unknown>;
  /** Closes the log; everything acknowledged stays durable. */
  close(): Promise<void>;
}
