/**
 * Probe (not a bench): the CPU one call carrying a large byte string costs
 * the transport on both ends (@strata/transport's RpcSession: encoding,
 * framing, the frame's checksum, decoding, the answer), as a GFS record
 * append's block (`BYTES`, default 7,500) costs a tablet server and its
 * primary, or a primary's forward and its secondary. Two sessions wired back
 * to back in memory, `CALLS` calls per round (default 20,000), one at a
 * time; prints µs per call (wall and this process's CPU). With `OLD=<dir>`
 * (a worktree of another commit) it alternates rounds of that tree's
 * `rpc_session.ts` with this one's, in this process (the codec package is
 * this tree's for both).
 *
 *   deno run -A benches/_rpc_bytes_probe.ts
 *   OLD=/tmp/old deno run -A benches/_rpc_bytes_probe.ts
 */
import { defineMessage, defineMessageSet } from "@strata/codec";
import { z } from "zod";
import { Handshake } from "../packages/transport/handshake.ts";
import * as mine from "../packages/transport/rpc_session.ts";
import { realTimers } from "../packages/transport/scheduler.ts";

const BYTES = Number(Deno.env.get("BYTES") ?? 7500);
const CALLS = Number(Deno.env.get("CALLS") ?? 20_000);
const ROUNDS = Number(Deno.env.get("ROUNDS") ?? 4);
const OLD = Deno.env.get("OLD");

const Apply = defineMessage(
  "Apply",
  z.object({
    handle: z.number().int(),
    version: z.number().int(),
    offset: z.number().int(),
    seq: z.number().int().nullable(),
    data: z.instanceof(Uint8Array),
  }),
);
const Applied = defineMessage("Applied", z.object({ length: z.number() }));
const set = defineMessageSet([Apply, Applied]);
type Set = readonly [typeof Apply, typeof Applied];
type Session = typeof mine.RpcSession;

/** Two sessions of `Impl` wired back to back (frames delivered in a microtask). */
async function pair(Impl: Session) {
  const ends: { a?: mine.RpcSession<Set>; b?: mine.RpcSession<Set> } = {};
  const make = (role: "client" | "server") =>
    new Impl<Set>({
      set,
      peer: role,
      timers: realTimers,
      handlers: {
        onRequest: (r) => ({
          type: "Applied",
          message: { length: (r.message as { data: Uint8Array }).data.length },
        }),
      },
      handshake: new Handshake({
        role,
        fingerprint: set.fingerprint,
        nonce: crypto.getRandomValues(new Uint8Array(32)),
      }),
      options: { differential: false },
      link: {
        write(build) {
          const frame = build();
          queueMicrotask(() =>
            (role === "client" ? ends.b : ends.a)!.receive(frame)
          );
          return Promise.resolve();
        },
        close() {},
      },
    });
  const a = ends.a = make("client");
  const b = ends.b = make("server");
  a.start();
  b.start();
  await a.ready;
  return { a, b };
}

/** CPU time of this process so far, ms (/proc, 10 ms ticks). */
function cpuMs(): number {
  const f = Deno.readTextFileSync("/proc/self/stat").split(") ")[1]!.split(" ");
  return (Number(f[11]) + Number(f[12])) * 10;
}

async function round(
  Impl: Session,
): Promise<{ wallUs: number; cpuUs: number }> {
  const { a, b } = await pair(Impl);
  const data = new Uint8Array(BYTES).fill(7);
  const m = { handle: 7, version: 3, offset: 0, seq: 1, data };
  for (let i = 0; i < 500; i++) await a.call(Apply, m);
  const c0 = cpuMs(), t0 = performance.now();
  for (let i = 0; i < CALLS; i++) {
    await a.call(Apply, { ...m, offset: i * BYTES, seq: i + 1 });
  }
  const wallUs = (performance.now() - t0) * 1000 / CALLS;
  const cpuUs = (cpuMs() - c0) * 1000 / CALLS;
  await a.close();
  await b.close();
  return { wallUs, cpuUs };
}

const old: Session | undefined = OLD === undefined
  ? undefined
  : (await import(`${OLD}/packages/transport/rpc_session.ts`)).RpcSession;
const f = (x: number) => x.toFixed(2);
for (let r = 1; r <= ROUNDS; r++) {
  for (
    const [name, Impl] of [["old", old], ["new", mine.RpcSession]] as const
  ) {
    if (Impl === undefined) continue;
    const x = await round(Impl);
    console.log(
      `round ${r} ${name}: ${f(x.wallUs)} us/call wall, ${
        f(x.cpuUs)
      } us/call CPU (${BYTES} bytes, ${CALLS} calls)`,
    );
  }
}
