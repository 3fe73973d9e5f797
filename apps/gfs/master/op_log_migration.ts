import { join } from "node:path";
import {
  pathExists as exists,
  type SegmentedLog,
  SegmentedLog as Log,
  SnapshotStore,
  syncDir,
} from "@strata/storage";
import { DiskReplicaStorage } from "@strata/replication";
import { isGfsError } from "../shared/gfs_error.ts";
import { decodeOp, MasterState } from "./master_state.ts";

/** What {@link migrateOpLog} did. */
export interface OpLogMigration {
  /** Operations the old single master had applied (the snapshot's index). */
  appliedIndex: number;
  /** Of them, replayed from the op log past its newest checkpoint. */
  replayed: number;
  /** Where the old files were kept (delete it once the master runs). */
  keptAt: string;
}

/** Where a migrated single master's op log and checkpoints are kept. */
export const MIGRATED_OP_LOG_DIR = "oplog.migrated";

/**
 * Replays an op log after its newest checkpoint: the state as of the last
 * logged operation. A rejected operation was rejected when it was first
 * applied too (same outcome); a damaged one is an error.
 * @throws GfsError `corrupt`, StorageError.
 */
export async function replayOpLog(
  checkpoints: SnapshotStore,
  log: SegmentedLog,
): Promise<
  {
    state: MasterState;
    applied: number;
    checkpointIndex: number;
    replayed: number;
  }
> {
  const { snapshot } = await checkpoints.loadNewest();
  let state = new MasterState();
  let applied = 0;
  if (snapshot !== null) {
    state = MasterState.decode(await snapshot.readState());
    applied = snapshot.meta.lastIncludedIndex;
  }
  const checkpointIndex = applied;
  let replayed = 0;
  const batch = 1024;
  for (
    let i = Math.max(applied + 1, log.firstIndex);
    i <= log.lastIndex;
    i += batch
  ) {
    for (const r of await log.read(i, Math.min(log.lastIndex + 1, i + batch))) {
      try {
        state.apply(decodeOp(r));
      } catch (e) {
        if (!isGfsError(e) || e.code === "corrupt") throw e;
      }
      replayed++;
    }
  }
  return {
    state,
    applied: Math.max(applied, log.lastIndex),
    checkpointIndex,
    replayed,
  };
}

/**
 * Converts a data directory written by the former single-master op log
 * (`log/` of encoded operations and `checkpoints/`) into a one-member
 * replicated store's (`log/` of raft entries, `snapshots/`, hard state):
 * the state the op log reached becomes the raft snapshot at the same
 * index, with `id` as the only voter (its raft log in segments of
 * `segmentBytes`, as the store opens it). Runs once, on open; returns
 * undefined when there is nothing to migrate.
 *
 * Crash-safe by its order: the old log is first renamed to
 * {@link MIGRATED_OP_LOG_DIR} (so the raft log can take `log/`), the new
 * store is written and fsync'd, and only then does `checkpoints/` move
 * into the kept directory — the step that marks the migration done.
 * Interrupted anywhere before, it starts over from the old files.
 */
export async function migrateOpLog(
  dir: string,
  id: number,
  segmentBytes: number,
): Promise<OpLogMigration | undefined> {
  const checkpointsDir = join(dir, "checkpoints");
  if (!(await exists(checkpointsDir))) return undefined;
  const kept = join(dir, MIGRATED_OP_LOG_DIR);
  if (!(await exists(kept))) {
    await Deno.mkdir(join(dir, "log"), { recursive: true });
    await Deno.rename(join(dir, "log"), kept);
    await syncDir(dir);
  }
  const checkpoints = await SnapshotStore.open(checkpointsDir);
  let old: Awaited<ReturnType<typeof replayOpLog>>;
  try {
    const log = await Log.open(kept);
    try {
      old = await replayOpLog(checkpoints, log);
    } finally {
      await log.close();
    }
  } finally {
    checkpoints.close();
  }
  // An empty op log leaves the new store empty: the node bootstraps.
  if (old.applied > 0) {
    const storage = await DiskReplicaStorage.open({
      dataDir: dir,
      segmentBytes,
    });
    try {
      await storage.installSnapshot({
        meta: {
          index: old.applied,
          term: 1,
          confState: { voters: [id], learners: [] },
        },
        data: old.state.encode(),
      });
      await storage.writeHardState({ term: 1, vote: 0, commit: old.applied });
    } finally {
      await storage.close();
    }
  }
  await Deno.rename(checkpointsDir, join(kept, "checkpoints"));
  await syncDir(dir);
  return { appliedIndex: old.applied, replayed: old.replayed, keptAt: kept };
}
