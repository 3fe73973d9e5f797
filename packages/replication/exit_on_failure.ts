/**
 * What a server process does when its replica halts on a failed write: it
 * exits, so that whatever supervises it (systemd, a container runtime,
 * `deno task kv`'s launcher) starts it again, and the new process recovers
 * from what is durable. A halted replica that kept its process running
 * would look alive to a supervisor while it answers nothing.
 */
import { CodecError } from "@strata/codec";
import { isStorageError } from "@strata/storage";

/** Exit code of a process whose replica halted on a failed write (EX_IOERR of sysexits.h). */
export const REPLICA_FAILED_EXIT_CODE = 74;

/** Anything that reports a halted replica (`ReplicatedNode`, the kv node, the GFS master's store). */
export interface FailureSource {
  /** Calls `listener` once when the replica halts on a failed write. */
  onFailure(listener: (error: unknown) => void): unknown;
}

/**
 * Exits the process with {@link REPLICA_FAILED_EXIT_CODE} when `source`
 * halts, after one JSON line on stderr:
 * `{"event":"fatal","name":…,"error":…,"exitCode":74}`.
 */
export function exitOnReplicaFailure(
  source: FailureSource,
  name: string,
): void {
  source.onFailure((e) => {
    console.error(JSON.stringify({
      event: "fatal",
      name,
      error: e instanceof Error ? e.message : String(e),
      action:
        "exiting: a replica that failed a disk write cannot tell what its disk holds; restart the process to recover from what is durable",
      exitCode: REPLICA_FAILED_EXIT_CODE,
    }));
    Deno.exit(REPLICA_FAILED_EXIT_CODE);
  });
}

/**
 * Exit code of a process that refuses to start because its replica's data
 * directory is damaged (EX_DATAERR of sysexits.h). Restarting cannot help:
 * an operator must replace the member (see the replication README).
 */
export const REPLICA_CORRUPT_EXIT_CODE = 65;

/** True when `e` says a replica's files are damaged (not a torn tail that recovery cut). */
export function isCorruptReplicaData(e: unknown): boolean {
  return isStorageError(e, "corrupt") || e instanceof CodecError;
}

/**
 * For a replica that failed to open: when its data is damaged, prints one
 * JSON line on stderr, `{"event":"fatal","name":…,"error":…,"exitCode":65}`
 * with what to do, and returns {@link REPLICA_CORRUPT_EXIT_CODE}; for any
 * other failure returns undefined (the caller reports it its own way).
 */
export function corruptDataExitCode(
  e: unknown,
  name: string,
  dataDir: string,
): number | undefined {
  if (!isCorruptReplicaData(e)) return undefined;
  console.error(JSON.stringify({
    event: "fatal",
    name,
    error: e instanceof Error ? e.message : String(e),
    action:
      `refusing to start: ${dataDir} holds damaged records that may have been acknowledged, so cutting them could lose committed writes; replace this member (remove it, delete its data directory, add it again with --join) or restore the directory from a copy`,
    exitCode: REPLICA_CORRUPT_EXIT_CODE,
  }));
  return REPLICA_CORRUPT_EXIT_CODE;
}
