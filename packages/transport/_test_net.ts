// Test helpers (not exported by mod.ts): a port no dial can reach, and a
// deadline for a promise that would otherwise hang the test.

/**
 * A TCP port that cannot be connected to, as a server behind a silent
 * partition: a listener that never accepts, its accept queue filled, so
 * the kernel drops every further SYN and a dial waits out its SYN retries
 * (about 2 min) unless the caller gives up. Filled until one dial is still
 * pending after 500 ms (a dropped SYN is resent after 1 s).
 */
export async function unconnectablePort(): Promise<
  { port: number; close(): void }
> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const queued: Deno.Conn[] = [];
  const close = () => {
    listener.close(); // pending dials are then refused
    for (const c of queued) c.close();
  };
  for (let i = 0; i < 20_000; i++) {
    const dial = Deno.connect({ hostname: "127.0.0.1", port });
    const c = await Promise.race([
      dial,
      new Promise<null>((r) => setTimeout(() => r(null), 500)),
    ]);
    if (c === null) {
      dial.then((late) => late.close(), () => {});
      return { port, close };
    }
    queued.push(c);
  }
  close();
  throw new Error("the accept queue never filled");
}

/**
 * `p`, or a rejection naming `what` once `ms` have passed: code without a
 * deadline of its own (a dial waiting out the SYN resends) fails the test
 * instead of hanging it.
 */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${what} still pending after ${ms} ms`)),
        ms,
      );
    }),
  ]).finally(() => clearTimeout(timer));
}
