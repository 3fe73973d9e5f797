/** Ports this process handed out lately, not to be handed out again. */
const recent: number[] = [];
const RECENT = 256;

/**
 * Ports handed out come from below Linux's default ephemeral range
 * (32768–60999): the kernel picks the local port of every outgoing
 * connection and of every `port: 0` listener from that range, so on a busy
 * machine a port read from a `port: 0` listener and bound a moment later
 * by a child was sometimes taken in between ("Address already in use").
 */
const LOW = 20_000;
const HIGH = 32_767;

/**
 * A TCP port on `hostname` (default 127.0.0.1) that was free a moment ago
 * (a random port in 20000–32767 that could be bound, then closed) — for
 * processes that must be told their port up front. It is not one of the
 * last 256 this process handed out: those may be reserved for a child that
 * has not bound yet.
 */
export function freePort(hostname = "127.0.0.1"): number {
  for (let tries = 0;; tries++) {
    const port = tries < 64
      ? LOW + Math.floor(Math.random() * (HIGH - LOW + 1))
      : 0; // the range is crowded: let the kernel choose
    let l: Deno.Listener;
    try {
      l = Deno.listen({ hostname, port });
    } catch (e) {
      if (e instanceof Deno.errors.AddrInUse) continue;
      throw e;
    }
    const chosen = (l.addr as Deno.NetAddr).port;
    l.close();
    if (!recent.includes(chosen) || tries >= 80) {
      recent.push(chosen);
      if (recent.length > RECENT) recent.shift();
      return chosen;
    }
  }
}
