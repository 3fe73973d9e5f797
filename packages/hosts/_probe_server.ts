// A test child for host_network_test.ts: serves HTTP on --listen and
// answers /probe?to=host:port with whether a TCP connection to that
// address opened within 1.5 s — how the test sees host-to-host links.
const listen = Deno.args[Deno.args.indexOf("--listen") + 1]!;
const [hostname, port] = listen.split(":");

async function reachable(to: string): Promise<boolean> {
  const [h, p] = to.split(":");
  let timer: ReturnType<typeof setTimeout> | undefined;
  const attempt = Deno.connect({ hostname: h!, port: Number(p) });
  try {
    const conn = await Promise.race([
      attempt,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("timeout")), 1500);
      }),
    ]);
    conn.close();
    return true;
  } catch {
    // A connection that opens after the timeout is closed then.
    attempt.then((c) => c.close(), () => {});
    return false;
  } finally {
    clearTimeout(timer);
  }
}

const server = Deno.serve(
  { hostname, port: Number(port), onListen: () => {} },
  async (req) => {
    const to = new URL(req.url).searchParams.get("to");
    if (!to) return Response.json({ pid: Deno.pid });
    return Response.json({ ok: await reachable(to) });
  },
);
console.log(JSON.stringify({ event: "ready", listen }));
Deno.addSignalListener("SIGTERM", () => server.shutdown());
await server.finished;
