/**
 * What a server process does when its replica halts on a failed write: it
 * exits, so that whatever supervises it (systemd, a container runtime,
 * `deno task kv`'s launcher) starts it again, and the new process recovers
 * from what is durable. A halted replica that kept its process running
 * would look alive to a supervisor while it answers nothing.
 */

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
