/**
 * Waits for a connection being made (a dial, with or without its
 * handshake) for at most `timeoutMs`, then rejects with `timedOut()`.
 *
 * Why: `Deno.connect` has no deadline of its own. To a peer whose packets
 * are dropped (a silent network partition) the kernel resends the SYN for
 * about two minutes (`net.ipv4.tcp_syn_retries` = 6: 1 + 2 + … + 64 s)
 * before it fails, whatever the caller's own timeout.
 *
 * A connection made after the deadline is closed when it arrives.
 * @returns the connection.
 * @throws `timedOut()` once `timeoutMs` has passed; otherwise whatever
 *   `connecting` rejects with.
 */
export function connectWithin<T extends { close(): unknown }>(
  connecting: Promise<T>,
  timeoutMs: number,
  timedOut: () => Error,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      reject(timedOut());
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
