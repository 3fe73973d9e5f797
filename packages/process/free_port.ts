/** Ports this process handed out lately, not to be handed out again. */
const recent: number[] = [];
const RECENT = 256;

/**
 * A TCP port on `hostname` (default 127.0.0.1) that was free a moment ago
 * (bind to port 0, read the port, close) — for processes that must be
 * told their port up front. It is not one of the last 256 this process
 * handed out: those may be reserved for a child that has not bound yet.
 */
export function freePort(hostname = "127.0.0.1"): number {
  for (let tries = 0;; tries++) {
    const l = Deno.listen({ hostname, port: 0 });
    const { port } = l.addr as Deno.NetAddr;
    l.close();
    if (!recent.includes(port) || tries >= 16) {
      recent.push(port);
      if (recent.length > RECENT) recent.shift();
      return port;
    }
  }
}
