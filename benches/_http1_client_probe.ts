/**
 * Probe: the client's CPU per small JSON POST, `fetch` (as TablesClient's
 * row writes used it: a string body, an abort signal, a client pool of its
 * own) against `@strata/edge`'s `Http1Client`, alternating. The server is
 * a bare `Deno.serve` in a child process (its CPU per request printed
 * too, from /proc). `deno run -A benches/_http1_client_probe.ts [pairs=2]
 * [requests=20000] [inFlight=128]`.
 */
import { cpuUsage } from "node:process";
import { Http1Client } from "@strata/edge";
import { cpuMs } from "./proc_cpu.ts";

const PAIRS = Number(Deno.args[0] ?? 2);
const N = Number(Deno.args[1] ?? 20_000);
const IN_FLIGHT = Number(Deno.args[2] ?? 128);

const SERVER = `
Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: ({ port }) => console.log(port) },
  async (req) => {
    await req.bytes();
    return new Response('{"applied":1,"timestamp":1796501081344}',
      { headers: { "content-type": "application/json" } });
  });`;
const child = new Deno.Command(Deno.execPath(), {
  args: ["eval", SERVER],
  stdout: "piped",
  stderr: "inherit",
}).spawn();
const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
const port = Number((await reader.read()).value);
reader.releaseLock();
const url = `http://127.0.0.1:${port}/v1/tables/bench/mutate`;
const body = JSON.stringify({
  row: "r0001234",
  encoding: "utf8",
  mutations: [{
    op: "put",
    family: "f",
    qualifier: "v",
    value: "a".repeat(100),
  }],
});
const headers = {
  authorization: "Bearer 0123456789abcdef0123456789abcdef",
  "content-type": "application/json",
};
const pool = Deno.createHttpClient({});
const http1 = new Http1Client();
const clients: Record<string, () => Promise<unknown>> = {
  fetch: async () => {
    const res = await fetch(url, {
      method: "POST",
      headers,
      body,
      signal: AbortSignal.timeout(60_000),
      client: pool,
    });
    return await res.json();
  },
  Http1Client: async () => {
    const res = await http1.request(url, {
      method: "POST",
      headers,
      body,
      timeoutMs: 60_000,
    });
    return JSON.parse(new TextDecoder().decode(res.body));
  },
};

async function run(call: () => Promise<unknown>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (i++ < N) await call();
    }),
  );
}

try {
  for (const call of Object.values(clients)) await run(call); // warm-up
  for (let p = 0; p < PAIRS; p++) {
    for (const [name, call] of Object.entries(clients)) {
      const [u0, s0, t0] = [
        cpuUsage(),
        await cpuMs([child.pid]),
        performance.now(),
      ];
      await run(call);
      const [u1, s1, t1] = [
        cpuUsage(),
        await cpuMs([child.pid]),
        performance.now(),
      ];
      const client = (u1.user - u0.user + u1.system - u0.system) / N;
      console.log(
        `${name}: client ${client.toFixed(1)} µs CPU/request, server ${
          ((s1 - s0) * 1000 / N).toFixed(1)
        } µs, ${(N / ((t1 - t0) / 1000)).toFixed(0)} requests/s (load ${
          Deno.loadavg()[0]!.toFixed(1)
        })`,
      );
    }
  }
} finally {
  http1.close();
  pool.close();
  child.kill();
  await child.status;
}
