/**
 * Probe: a tablet server's CPU and garbage per put, its HTTP handler alone.
 * A child process serves the tablet server API (`createTabletServerApi`,
 * edge guard with real tokens, a `TabletHost` with 2 tablets whose commit
 * log is a real `ServerLog` over a stand-in GFS client: a block's append
 * and its `exists` check resolve after a timer, so puts group-commit as in
 * the stack without any GFS process) on `Deno.serve`; this process drives
 * it with `Http1Client` puts shaped like `TablesClient`'s (1 cell, 100-byte
 * value, `utf8`) and prints the child's CPU µs per put (from /proc) and
 * the bytes V8 allocated per put (from the child's `--trace-gc`).
 *
 * `deno run -A benches/_tablet_put_handler_probe.ts [pairs=3]
 * [requests=20000] [inFlight=128]`. With `PROBE_OLD_ROOT=<worktree>` the
 * child alternates between that checkout and this one (A/B of the server
 * code; the file must exist in both). `PROBE_PROF_DIR=<dir>` gives the
 * children `--cpu-prof-dir` (100 µs samples); `PROBE_BARE=1` serves a
 * bare `Deno.serve` that reads the body and answers (the floor);
 * `PROBE_APPEND_MS` sets the stand-in append's time (default 4 ms);
 * `PROBE_HEAP_DIR=<dir>` writes a sampling heap profile of every side's
 * measured puts there (its CPU figures then include the profiler);
 * `PROBE_V8_FLAGS` adds V8 flags to the children (e.g. `--perf-basic-prof`
 * for `perf record -p <child>`).
 */
import { Http1Client } from "@strata/edge";
import { SERVER_V8_FLAGS } from "@strata/tables/stack_launcher";
import { cpuMs } from "./proc_cpu.ts";

if (Deno.args[0] === "--serve") {
  await serve();
} else {
  await drive();
}

/** The child: the tablet server API on a stand-in GFS. */
async function serve(): Promise<void> {
  if (Deno.env.get("PROBE_BARE") === "1") {
    // The floor: a bare Deno.serve that reads the body and answers.
    Deno.addSignalListener("SIGINT", () => Deno.exit(0));
    Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      onListen: ({ port }) => console.log(`port ${port}`),
    }, async (req) => {
      await req.bytes();
      return new Response('{"applied":1,"timestamp":1796501081344}', {
        headers: { "content-type": "application/json" },
      });
    });
    return;
  }
  const { createTabletServerApi } = await import(
    "../apps/tables/server/tablet_server_api.ts"
  );
  const { TabletHost } = await import("../apps/tables/server/tablet_host.ts");
  const { SessionLease } = await import(
    "../apps/tables/server/session_lease.ts"
  );
  const { ServerLog } = await import("../apps/tables/storage/server_log.ts");
  const { openTablet } = await import("../apps/tables/tablet/mod.ts");
  const { TokenAuth } = await import("@strata/edge");
  const root = await Deno.makeTempDir({ prefix: "tablet-put-probe-" });
  const APPEND_MS = Number(Deno.env.get("PROBE_APPEND_MS") ?? 4);
  const later = <T>(ms: number, v: T) =>
    new Promise<T>((r) => setTimeout(() => r(v), ms));
  const gfs = {
    append: () => later(APPEND_MS, { offset: 0 }),
    exists: (paths: string[]) => later(1, paths.map(() => false)),
    locate: () => Promise.resolve({ chunkBytes: 64 << 20 }),
    remove: () => Promise.resolve(),
  };
  // deno-lint-ignore no-explicit-any
  const log = ServerLog.open(gfs as any, "/logs/ts1/1");
  const lease = new SessionLease(3_600_000, 0.75, () => performance.now());
  lease.renewed(performance.now());
  let n = 0;
  const host = new TabletHost(async (dir, schema, range) => {
    const fence = {
      epoch: 1,
      supersededBy: `/t/${dir}/claims/2`,
      observe: () => {},
    };
    // deno-lint-ignore no-explicit-any
    const view = log.view(dir, fence as any, () => Promise.resolve([]));
    return await openTablet(`${root}/${n++}`, schema, range, {
      lsm: { log: view },
    });
  });
  const schema = { name: "bench", families: [{ name: "f" }] };
  const b64 = (s: string) => btoa(s);
  await host.openTablet(
    {
      id: "t1",
      table: "bench",
      start: "",
      end: b64("r0005000"),
      dir: "bench/t1",
      server: "ts1",
    },
    schema,
    1,
  );
  await host.openTablet(
    {
      id: "t2",
      table: "bench",
      start: b64("r0005000"),
      end: null,
      dir: "bench/t2",
      server: "ts1",
    },
    schema,
    1,
  );
  const app = createTabletServerApi({
    id: "ts1",
    host,
    lease: () => lease,
    notServingReason: () => "no session",
  }, {
    auth: new TokenAuth({
      admin: "a".repeat(32),
      write: "0123456789abcdef0123456789abcdef",
      read: "r".repeat(32),
    }),
    hosts: ["127.0.0.1", "localhost"],
    peerSecret: "p".repeat(32),
  });
  // Exit (not die) on SIGINT, so --cpu-prof-dir writes its profile.
  Deno.addSignalListener("SIGINT", () => Deno.exit(0));
  Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: ({ port }) => console.log(`port ${port}`),
  }, app.fetch);
}

interface Child {
  proc: Deno.ChildProcess;
  port: number;
  /**
   * Bytes V8 allocated in the child's life and its GCs, from its GC trace
   * (which V8 buffers: known once the child has exited).
   */
  gc: Promise<{ allocated: number; gcs: number }>;
}

/** `PROBE_V8_FLAGS` (comma-separated), e.g. `--perf-basic-prof` for perf. */
function extraV8Flags(): string[] {
  const f = Deno.env.get("PROBE_V8_FLAGS");
  return f ? f.split(",") : [];
}

/** Starts the child of checkout `root`. */
async function start(root: string, tag: string): Promise<Child> {
  const prof = Deno.env.get("PROBE_PROF_DIR");
  const proc = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      // The tablet servers' own heap flags, as the stack launcher gives them.
      `--v8-flags=--trace-gc,${
        [...SERVER_V8_FLAGS, ...extraV8Flags()].join(",")
      }`,
      ...(prof
        ? [`--cpu-prof-dir=${prof}/${tag}`, "--cpu-prof-interval=100"]
        : []),
      ...(Deno.env.get("PROBE_HEAP_DIR") ? ["--inspect=127.0.0.1:0"] : []),
      `${root}/benches/_tablet_put_handler_probe.ts`,
      "--serve",
    ],
    cwd: root,
    stdout: "piped",
    stderr: Deno.env.get("PROBE_HEAP_DIR") ? "piped" : "inherit",
  }).spawn();
  let allocated = 0;
  let gcs = 0;
  let lastAfter: number | undefined;
  const port = Promise.withResolvers<number>();
  // "... Scavenge 10.2 (12.3) -> 9.8 (13.3) MB, ..." — what was allocated
  // since the last GC is this one's before minus the last one's after.
  const gcLine =
    /(Scavenge|Mark-Compact|Minor Mark-Sweep)[^0-9]*([\d.]+) \([\d.]+\) -> ([\d.]+) \([\d.]+\) MB/;
  const gc = (async () => {
    let buf = "";
    for await (
      const chunk of proc.stdout.pipeThrough(new TextDecoderStream())
    ) {
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        const p = /^port (\d+)/.exec(line);
        if (p) port.resolve(Number(p[1]));
        const g = gcLine.exec(line);
        if (g) {
          const [before, after] = [Number(g[2]), Number(g[3])];
          if (lastAfter !== undefined) {
            allocated += Math.max(0, before - lastAfter) * 1024 * 1024;
          }
          lastAfter = after;
          gcs++;
        }
      }
    }
    return { allocated, gcs };
  })();
  return { proc, port: await port.promise, gc };
}

/**
 * Starts V8's sampling heap profiler in `child` (started with `--inspect`),
 * keeping what minor and major GCs collected too, so the profile is every
 * allocation (one sample per 256 bytes on average), not what is live; the
 * function returned stops it and gives the profile (Chrome DevTools opens
 * it as a `.heapprofile`).
 */
async function heapSampling(
  child: Deno.ChildProcess,
): Promise<() => Promise<unknown>> {
  // Deno prints the inspector's address on stderr.
  const lines = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let url: string | undefined;
  for (let text = ""; url === undefined;) {
    const { value, done } = await lines.read();
    if (done) throw new Error("the child printed no inspector address");
    text += value;
    url = /ws:\/\/[^\s]+/.exec(text)?.[0];
  }
  lines.releaseLock();
  child.stderr.pipeTo(new WritableStream()).catch(() => {});
  const ws = new WebSocket(url);
  await new Promise((r) => ws.onopen = r);
  let id = 0;
  const waiting = new Map<number, (v: unknown) => void>();
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    waiting.get(m.id)?.(m.result);
    waiting.delete(m.id);
  };
  const call = (method: string, params = {}) =>
    new Promise<unknown>((resolve) => {
      waiting.set(++id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  await call("HeapProfiler.enable");
  await call("HeapProfiler.startSampling", {
    samplingInterval: 256,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  return async () => {
    const r = await call("HeapProfiler.stopSampling") as { profile: unknown };
    ws.close();
    return r.profile;
  };
}

/** Voluntary context switches of `pid`'s main thread (its sleeps, so its wake-ups). */
async function wakeUps(pid: number): Promise<number> {
  const s = await Deno.readTextFile(`/proc/${pid}/task/${pid}/status`);
  return Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(s)?.[1] ?? NaN);
}

/** CPU ms of `pid`'s threads: [main user, main sys, other threads]. */
async function threadCpu(pid: number): Promise<number[]> {
  const out = [0, 0, 0];
  for await (const t of Deno.readDir(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = await Deno.readTextFile(`/proc/${pid}/task/${t.name}/stat`);
    } catch {
      continue; // a thread that ended
    }
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const [u, s] = [Number(f[11]) * 10, Number(f[12]) * 10]; // 100 Hz ticks
    if (t.name === String(pid)) {
      out[0]! += u;
      out[1]! += s;
    } else out[2]! += u + s;
  }
  return out;
}

async function drive(): Promise<void> {
  const PAIRS = Number(Deno.args[0] ?? 3);
  const N = Number(Deno.args[1] ?? 20_000);
  const IN_FLIGHT = Number(Deno.args[2] ?? 128);
  const here = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const old = Deno.env.get("PROBE_OLD_ROOT");
  const sides: [string, string][] = old
    ? [["old", old], ["new", here]]
    : [["this", here]];
  const http1 = new Http1Client();
  const key = (i: number) => `r${String(i % 10_000).padStart(7, "0")}`;
  const value = "a".repeat(100);
  const headers = {
    authorization: "Bearer 0123456789abcdef0123456789abcdef",
    "content-type": "application/json",
  };
  const run = async (port: number, count: number) => {
    const url = `http://127.0.0.1:${port}/v1/tables/bench/mutate`;
    let i = 0;
    let bad = 0;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (i < count) {
          const k = key(i++ * 7919);
          const res = await http1.request(url, {
            method: "POST",
            headers,
            body: JSON.stringify({
              row: k,
              encoding: "utf8",
              mutations: [{
                op: "put",
                family: "f",
                qualifier: "v",
                value,
              }],
            }),
            timeoutMs: 60_000,
          });
          if (res.status !== 200) bad++;
        }
      }),
    );
    return bad;
  };
  const results: Record<string, { us: number[]; bytes: number[] }> = {};
  try {
    for (let p = 0; p < PAIRS; p++) {
      for (const [name, root] of sides) {
        const child = await start(root, `${name}-${p}`);
        let us = NaN;
        let puts = 0;
        let bad = 0;
        let rate = 0;
        let split: number[] = [];
        let wakes = NaN;
        try {
          await run(child.port, N / 2); // warm-up: JIT, connections
          const [c0, h0, w0, t0] = [
            await cpuMs([child.proc.pid]),
            await threadCpu(child.proc.pid),
            await wakeUps(child.proc.pid),
            performance.now(),
          ];
          const heap = Deno.env.get("PROBE_HEAP_DIR")
            ? await heapSampling(child.proc)
            : undefined;
          bad = await run(child.port, N);
          if (heap) {
            const file = `${
              Deno.env.get("PROBE_HEAP_DIR")
            }/${name}-${p}.heapprofile`;
            await Deno.writeTextFile(file, JSON.stringify(await heap()));
            console.log(`${name}: sampled allocations of ${N} puts in ${file}`);
          }
          const [c1, h1, w1, t1] = [
            await cpuMs([child.proc.pid]),
            await threadCpu(child.proc.pid),
            await wakeUps(child.proc.pid),
            performance.now(),
          ];
          wakes = (w1 - w0) / N;
          split = h1.map((v, i) => (v - h0[i]!) * 1000 / N);
          us = (c1 - c0) * 1000 / N;
          rate = N / ((t1 - t0) / 1000);
          puts = N + N / 2;
        } finally {
          child.proc.kill("SIGINT");
          await child.proc.status;
        }
        // Over the child's whole life (start-up is a few MB of ~700).
        const { allocated, gcs } = await child.gc;
        const bytes = allocated / puts;
        (results[name] ??= { us: [], bytes: [] }).us.push(us);
        results[name].bytes.push(bytes);
        console.log(
          `${name}: server ${us.toFixed(1)} µs CPU/put, ~${
            (bytes / 1024).toFixed(1)
          } KiB allocated/put (${gcs} GCs in its life; µs/put main thread user ${
            split[0]?.toFixed(1)
          }, sys ${split[1]?.toFixed(1)}, other threads ${
            split[2]?.toFixed(1)
          }; ${wakes.toFixed(3)} main-thread wake-ups/put), ${
            rate.toFixed(0)
          } puts/s${bad ? `, ${bad} not 200` : ""} (load ${
            Deno.loadavg()[0]!.toFixed(1)
          }, ${new Date().toISOString().slice(11, 19)} UTC)`,
        );
      }
    }
    for (const [name, r] of Object.entries(results)) {
      const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
      console.log(
        `${name} mean: ${mean(r.us).toFixed(1)} µs/put, ${
          (mean(r.bytes) / 1024).toFixed(1)
        } KiB/put`,
      );
    }
  } finally {
    http1.close();
  }
}
