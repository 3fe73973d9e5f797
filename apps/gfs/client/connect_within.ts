import { GfsError } from "../shared/gfs_error.ts";

/**
 * Waits for a connection being made (`connecting`: a dial, with or without
 * its handshake) for at most `timeoutMs`.
 *
 * Why: `Deno.connect` has no deadline of its own. To a server whose
 * packets are dropped (a silent network partition) the kernel resends the
 * SYN for about two minutes (`net.ipv4.tcp_syn_retries` = 6: 1 + 2 + … +
 * 64 s) before it fails, and every exchange's deadline started only once
 * the socket was open, so an upload, read or append that had to dial a
 * cut-off chunkserver waited that long whatever its timeout
 * (`gfs_partition_test.ts` saw an upload stall past 40 s this way).
 *
 * A connection made after the deadline is closed when it arrives.
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
  return new Promise<T>((resolve, reject) => {
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      reject(
        new GfsError(
          "unavailable",
          `cannot reach ${what}: not connected within ${timeoutMs} ms`,
        ),
      );
    }, timeoutMs);
    connecting.then(
      (conn) => {
        clearTimeout(timer);
        if (!late) return resolve(conn);
        // Nobody waits for it any more: close it, quietly.
        try {
          Promise.resolve(conn.close()).catch(() => {});
        } catch { /* already closed */ }
      },
      (e) => {
        clearTimeout(timer);
        if (!late) reject(e);
      },
    );
  });
}
