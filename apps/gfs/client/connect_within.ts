import { connectWithin as within } from "@strata/transport";
import { GfsError } from "../shared/gfs_error.ts";

/**
 * Waits for a connection being made (`connecting`: a dial, with or without
 * its handshake) for at most `timeoutMs` (`@strata/transport`'s
 * `connectWithin`, which closes one that arrives late).
 *
 * Why: every exchange's deadline started only once the socket was open, so
 * an upload, read or append that had to dial a cut-off chunkserver waited
 * out the kernel's SYN resends (about two minutes) whatever its timeout
 * (`gfs_partition_test.ts` saw an upload stall past 40 s this way).
 * @param what names the peer in the error.
 * @returns the connection.
 * @throws GfsError `unavailable` once `timeoutMs` has passed; otherwise
 *   whatever `connecting` rejects with.
 */
export function connectWithin<T extends { close(): unknown }>(
  connecting: Promise<T>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  return within(
    connecting,
    timeoutMs,
    () =>
      new GfsError(
        "unavailable",
        `cannot reach ${what}: not connected within ${timeoutMs} ms`,
      ),
  );
}
