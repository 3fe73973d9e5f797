/**
 * Probe (not a test, not a benchmark): the time and CPU of a small
 * `GfsClient.pread`. Starts bench:gfs's reads cluster (3 chunkservers as
 * processes, replication 3, a 64 MiB file) and, per size (4 and 64 KiB),
 * alternates a loopback echo round trip carrying the block with a `pread`
 * at a random offset (as the bench does), then prints the p50s, their
 * ratio and the CPU per read of the chunkservers (together, from /proc)
 * and of this process.
 *
 *   deno run -A apps/gfs/_read_probe.ts
 *
 * `ROUNDS=n` (default 1000); `INTERLEAVE=1` adds a data-port and an HTTP
 * `pread` to each round, as the bench's A/B does;
 * `STRATA_CPU_PROF_DIR=dir` writes a V8 CPU profile of every process it
 * starts (add `--cpu-prof` for this one).
 */
import { join } from "node:path";
import { GfsClient, startCluster } from "./mod.ts";

const MiB = 2 ** 20;
const rounds = Number(Deno.env.get("ROUNDS") ?? 1000);
const interleave = Deno.env.get("INTERLEAVE") === "1";
const warmup = Number(Deno.env.get("WARMUP") ?? 50);
const root = await Deno.makeTempDir({ prefix: "gfs-read-probe-" });
const cluster = await startCluster({
  dataDir: join(root, "c"),
  chunkservers: 3,
  master: { chunkBytes: 64 * MiB },
  chunkserver: () => ({ scrubPauseMs: 0 }),
});
const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const TICK_MS = 10; // USER_HZ 100
/** CPU ms (user + system) of process `pid` and its threads. */
const cpuMs = (pid: number | "self") => {
  const f = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const rest = f.slice(f.lastIndexOf(")") + 2).split(" ");
  return (Number(rest[11]) + Number(rest[12])) * TICK_MS;
};
const ECHO = `
const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
console.log(l.addr.port);
const block = new Uint8Array(1 << 20);
for await (const c of l) {
  (async () => {
    const head = new Uint8Array(4);
    try {
      for (;;) {
        let got = 0;
        while (got < 4) {
          const n = await c.read(head.subarray(got));
          if (n === null) return;
          got += n;
        }
        const len = new DataView(head.buffer).getUint32(0);
        for (let sent = 0; sent < len;) {
          sent += await c.write(block.subarray(0, Math.min(block.length, len - sent)));
        }
      }
    } catch { /* closed */ }
  })();
}`;
const echoChild = new Deno.Command(Deno.execPath(), {
  args: ["eval", ECHO],
  stdout: "piped",
}).spawn();
try {
  const lines = echoChild.stdout.pipeThrough(new TextDecoderStream())
    .getReader();
  const port = Number((await lines.read()).value?.trim());
  lines.releaseLock();
  const echo = await Deno.connect({ hostname: "127.0.0.1", port });
  echo.setNoDelay(true);
  const ebuf = new Uint8Array(MiB);
  const rtt = async (n: number) => {
    const h = new Uint8Array(4);
    new DataView(h.buffer).setUint32(0, n);
    await echo.write(h);
    for (let got = 0; got < n;) {
      const r = await echo.read(ebuf.subarray(0, n - got));
      if (r === null) throw new Error("echo server went away");
      got += r;
    }
  };
  const token = cluster.secrets!.tokens.admin;
  const client = new GfsClient(cluster.master.url, { token });
  const framed = new GfsClient(cluster.master.url, { token, bulkPort: false });
  const http = new GfsClient(cluster.master.url, {
    token,
    bulkPort: false,
    dataPort: false,
  });
  const size = 64 * MiB;
  const data = new Uint8Array(size);
  crypto.getRandomValues(data.subarray(0, 65536));
  for (let o = 65536; o < size; o += 65536) data.copyWithin(o, 0, 65536);
  await client.upload("/p/f", data);
  const pids = cluster.chunkservers.map((c) => c.process.pid);
  let seed = 7;
  const off = (n: number) => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return Math.floor((seed / 2 ** 32) * (size - n));
  };
  for (const n of [4096, 65536]) {
    for (let i = 0; i < warmup; i++) {
      await client.pread("/p/f", off(n), n);
      if (interleave) {
        await framed.pread("/p/f", off(n), n);
        await http.pread("/p/f", off(n), n);
      }
    }
    const rttMs: number[] = [], readMs: number[] = [];
    let serverCpu = 0, clientCpu = 0, echoCpu = 0, rttClientCpu = 0;
    for (let i = 0; i < rounds; i++) {
      const o = off(n);
      const e0 = cpuMs(echoChild.pid);
      const r0 = cpuMs("self");
      let t0 = performance.now();
      await rtt(n);
      rttMs.push(performance.now() - t0);
      rttClientCpu += cpuMs("self") - r0;
      echoCpu += cpuMs(echoChild.pid) - e0;
      const s0 = pids.reduce((a, p) => a + cpuMs(p), 0);
      const c0 = cpuMs("self");
      t0 = performance.now();
      const got = await client.pread("/p/f", o, n);
      readMs.push(performance.now() - t0);
      clientCpu += cpuMs("self") - c0;
      serverCpu += pids.reduce((a, p) => a + cpuMs(p), 0) - s0;
      if (got[0] !== data[o] || got[n - 1] !== data[o + n - 1]) {
        throw new Error(`wrong bytes at ${o}`);
      }
      if (interleave) {
        await framed.pread("/p/f", o, n);
        await http.pread("/p/f", o, n);
      }
    }
    console.log(JSON.stringify({
      size: `${n / 1024} KiB`,
      load: Deno.readTextFileSync("/proc/loadavg").split(" ")[0],
      rttP50Ms: +p50(rttMs).toFixed(3),
      preadP50Ms: +p50(readMs).toFixed(3),
      ratio: +(p50(readMs) / p50(rttMs)).toFixed(2),
      // CPU ticks are 10 ms: the sums are coarse per read, fine over 1000.
      chunkserversCpuUsPerRead: Math.round(serverCpu / rounds * 1000),
      clientCpuUsPerRead: Math.round(clientCpu / rounds * 1000),
      echoServerCpuUsPerRtt: Math.round(echoCpu / rounds * 1000),
      clientCpuUsPerRtt: Math.round(rttClientCpu / rounds * 1000),
    }));
  }
  echo.close();
  await Promise.all([client.close(), framed.close(), http.close()]);
} finally {
  echoChild.kill("SIGKILL");
  await echoChild.status;
  await cluster.stop();
  await Deno.remove(root, { recursive: true });
}
