/**
 * Probe helper: per-thread CPU of a running stack's processes, to cut to
 * one line of `_tables_put_probe.ts` (which prints each line's window in
 * /proc/uptime seconds). `sample` writes, every 200 ms, one line per
 * thread of every process whose command line contains `<match>` (e.g. a
 * worktree's path): uptime, pid, kind, tid, thread name, user and system
 * ticks, voluntary and involuntary context switches, minor page faults.
 * `cut` sums them by kind and thread (main, V8 workers, tokio) between
 * two uptimes and divides by a put count.
 *
 * ```sh
 * deno run -A benches/_thread_cpu.ts sample /tmp/t.txt /work/wt/x/ &
 * PROBE_CLIENTS=256 PROBE_SECONDS=5 deno run -A benches/_tables_put_probe.ts 2
 * deno run -A benches/_thread_cpu.ts cut /tmp/t.txt <t0> <t1> <puts>
 * ```
 */
const KINDS = [
  "tablet_server_main",
  "chunkserver_main",
  "gfs/master_main",
  "tables/master/master_main",
  "kv/",
];
const TICK_MS = 10; // USER_HZ = 100 on Linux

const [mode, file, ...rest] = Deno.args;
if (mode === "sample") await sample(file!, rest[0]!);
else if (mode === "cut") {
  cut(file!, Number(rest[0]), Number(rest[1]), Number(rest[2]));
} else {
  console.error("usage: sample <out> <match> | cut <file> <t0> <t1> <puts>");
  Deno.exit(2);
}

function procs(match: string): [string, string][] {
  const out: [string, string][] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    let cmd: string;
    try {
      cmd = Deno.readTextFileSync(`/proc/${e.name}/cmdline`);
    } catch {
      continue;
    }
    if (!cmd.includes(match)) continue;
    const kind = KINDS.find((k) => cmd.includes(k));
    if (kind) out.push([e.name, kind]);
  }
  return out;
}

async function sample(out: string, match: string): Promise<void> {
  const f = await Deno.open(out, { create: true, write: true, append: true });
  const enc = new TextEncoder();
  let ps: [string, string][] = [];
  let listed = 0;
  for (;;) {
    if (performance.now() - listed > 3000) {
      ps = procs(match);
      listed = performance.now();
    }
    const up = Deno.readTextFileSync("/proc/uptime").split(" ")[0];
    const lines: string[] = [];
    for (const [pid, kind] of ps) {
      try {
        for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
          const s = Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/stat`);
          const name = s.slice(s.indexOf("(") + 1, s.lastIndexOf(")"))
            .replaceAll(" ", "_");
          const f2 = s.slice(s.lastIndexOf(")") + 2).split(" ");
          const st = Deno.readTextFileSync(
            `/proc/${pid}/task/${t.name}/status`,
          );
          const vol = /\nvoluntary_ctxt_switches:\s+(\d+)/.exec(st)?.[1];
          const nv = /nonvoluntary_ctxt_switches:\s+(\d+)/.exec(st)?.[1];
          lines.push(
            `${up} ${pid} ${kind} ${t.name} ${name} ${f2[11]} ${
              f2[12]
            } ${vol} ${nv} ${f2[7]}`,
          );
        }
      } catch { /* exited */ }
    }
    await f.write(enc.encode(lines.join("\n") + "\n"));
    await new Promise((r) => setTimeout(r, 200));
  }
}

function cut(file: string, t0: number, t1: number, puts: number): void {
  const first = new Map<string, number[]>();
  const last = new Map<string, number[]>();
  for (const line of Deno.readTextFileSync(file).split("\n")) {
    const p = line.split(" ");
    if (p.length !== 10) continue;
    const up = Number(p[0]);
    const key = `${p[2]} ${p[1]} ${p[3]} ${p[4]}`;
    const v = p.slice(5).map(Number);
    if (up <= t0) first.set(key, v);
    if (up <= t1) last.set(key, v);
  }
  const sums = new Map<string, number[]>();
  for (const [key, b] of last) {
    const a = first.get(key);
    if (!a) continue;
    const [kind, , , name] = key.split(" ");
    const thread = name === "deno"
      ? "main"
      : name!.startsWith("V8")
      ? "V8 workers"
      : name!.startsWith("tokio")
      ? "tokio"
      : name!;
    const k = `${kind} ${thread}`;
    const s = sums.get(k) ?? [0, 0, 0, 0, 0];
    b.forEach((x, i) => s[i]! += x - a[i]!);
    sums.set(k, s);
  }
  for (const [k, [u, s, v, n, mf]] of [...sums].sort()) {
    if (u! + s! + v! + n! === 0) continue;
    console.log(
      `${k.padEnd(32)} user ${(u! * TICK_MS * 1000 / puts).toFixed(1)} sys ${
        (s! * TICK_MS * 1000 / puts).toFixed(1)
      } µs/put; switches per 1000 puts: voluntary ${
        (v! * 1000 / puts).toFixed(0)
      }, involuntary ${(n! * 1000 / puts).toFixed(0)}; minor faults ${
        (mf! / puts).toFixed(2)
      }/put`,
    );
  }
}
