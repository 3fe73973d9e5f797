/**
 * A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read
 * the port, close). For processes that must be told their port up front.
 */
export function freePort(): Promise<number> {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = l.addr as Deno.NetAddr;
  l.close();
  return Promise.resolve(port);
}
