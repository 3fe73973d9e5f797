/**
 * @module
 * CPU time (user + system) the kernel has charged to processes, from
 * /proc/<pid>/stat: how much work a server did for a load run, which on a
 * machine shared with other jobs says more about efficiency than wall-clock
 * throughput does. Linux only; other systems report NaN.
 */

let ticksPerSecond: number | undefined;

async function clockTicks(): Promise<number> {
  if (ticksPerSecond !== undefined) return ticksPerSecond;
  try {
    const out = await new Deno.Command("getconf", {
      args: ["CLK_TCK"],
      stdout: "piped",
      stderr: "null",
    }).output();
    ticksPerSecond = Number(new TextDecoder().decode(out.stdout).trim()) ||
      100;
  } catch {
    ticksPerSecond = 100;
  }
  return ticksPerSecond;
}

/** Total CPU milliseconds charged so far to `pids` (NaN when /proc cannot be read). */
export async function cpuMs(pids: readonly number[]): Promise<number> {
  const hz = await clockTicks();
  let ticks = 0;
  for (const pid of pids) {
    let stat: string;
    try {
      stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    } catch {
      return NaN;
    }
    // Fields after the parenthesised command name: state is field 3,
    // utime field 14, stime field 15.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    ticks += Number(rest[11]) + Number(rest[12]);
  }
  return (ticks * 1000) / hz;
}

/** Context switches of a process so far (every thread, voluntary or not). */
export function contextSwitches(pid: number): number {
  let n = 0;
  for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      const s = Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/status`);
      for (const m of s.matchAll(/ctxt_switches:\s+(\d+)/g)) n += Number(m[1]);
    } catch {
      // The thread ended.
    }
  }
  return n;
}
