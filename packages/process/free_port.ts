/**
 * A TCP port on `hostname` (default 127.0.0.1) that was free a moment ago
 * (bind to port 0, read the port, close) — for processes that must be
 * told their port up front.
 */
export function freePort(hostname = "127.0.0.1"): number {
  const l = Deno.listen({ hostname, port: 0 });
  const { port } = l.addr as Deno.NetAddr;
  l.close();
  return port;
}
