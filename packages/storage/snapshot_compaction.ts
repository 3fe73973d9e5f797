import type { CompactResult, SegmentedLog } from "./segmented_log.ts";
import type { SnapshotStore } from "./snapshot_store.ts";
import { StorageError } from "./storage_error.ts";

/**
 * Step three of taking a snapshot: finds the newest snapshot that verifies
 * in `store` and deletes the log segments it covers. The covered index is
 * read back from the saved file, never taken on trust, so an entry the
 * snapshot does not include is never deleted.
 *
 * Afterwards it asserts the coverage invariant: the snapshot plus the log
 * cover every index from the beginning (`log.firstIndex <=
 * lastIncludedIndex + 1`).
 *
 * @returns what was compacted, or null when no valid snapshot exists.
 * @throws StorageError `corrupt` if coverage would be broken, or what the
 *   log and store throw.
 */
export async function compactToSnapshot(
  log: SegmentedLog,
  store: SnapshotStore,
): Promise<(CompactResult & { snapshotIndex: number }) | null> {
  const { snapshot } = await store.loadNewest();
  if (snapshot === null) return null;
  const covered = snapshot.meta.lastIncludedIndex;
  const result = await log.compactPrefix(Math.min(covered, log.lastIndex));
  if (log.firstIndex > covered + 1) {
    throw new StorageError(
      "corrupt",
      `snapshot through ${covered} and log from ${log.firstIndex} leave a gap`,
    );
  }
  return { ...result, snapshotIndex: covered };
}
