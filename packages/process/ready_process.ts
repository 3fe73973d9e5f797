/**
 * Child processes that announce readiness with one JSON line on stdout —
 * how every strata node process (raft node, GFS master and chunkserver,
 * search shard and coordinator) tells its launcher it serves.
 */
import { stopChild } from "./stop_child.ts";
import { withEnvV8Flags } from "./extra_v8_flags.ts";

/** Why a child did not become ready. */
export type ProcessErrorCode = "exited" | "timeout";

/** A child that exited, or stayed silent, before printing its ready line. */
export class ProcessError extends Error {
  /** Why. */
  readonly code: ProcessErrorCode;

  /**
   * Creates the error.
   * @param code why; @param message names the process and what happened.
   */
  constructor(code: ProcessErrorCode, message: string) {
    super(message);
    this.name = "ProcessError";
    this.code = code;
  }
}

/** Options of {@link spawnUntilReady}. */
export interface SpawnOptions {
  /** Name used in error messages (default: the script argument). */
  name?: string;
  /** Milliseconds to wait for the ready line (default 30 s). */
  timeoutMs?: number;
  /** Where the child's stderr goes (default "inherit"). */
  stderr?: "inherit" | "null";
  /** Extra environment variables. */
  env?: Record<string, string>;
  /**
   * A command that runs the deno binary for us, e.g.
   * `["ip", "netns", "exec", "h1"]` to start the node inside a network
   * namespace. It must exec deno in its own process (as `ip netns exec`
   * does), so that signals sent to the child reach deno itself.
   */
  prefix?: string[];
}

/** A running child that printed its ready line. */
export interface ReadyProcess<T> {
  /** The child. */
  readonly child: Deno.ChildProcess;
  /** What `isReady` returned for the ready line. */
  readonly ready: T;
  /** True once the child has exited. */
  readonly exited: boolean;
  /**
   * Sends SIGTERM (SIGKILL with `hard`), then SIGKILL after `graceMs`
   * (default 10 s), and waits for the exit. A paused (SIGSTOP) child is
   * resumed first so it can act on SIGTERM.
   */
  stop(hard?: boolean, graceMs?: number): Promise<void>;
}

/**
 * Environment variable: when set to a directory, every `deno run` child
 * started here writes a V8 CPU profile on exit into `<dir>/<name>/` (for
 * profiling a whole multi-process stack under load).
 */
export const CPU_PROF_DIR_ENV = "STRATA_CPU_PROF_DIR";

/** `args` with `--cpu-prof-dir` added when {@link CPU_PROF_DIR_ENV} is set. */
function withProfiler(args: string[], name: string): string[] {
  const dir = Deno.env.get(CPU_PROF_DIR_ENV);
  if (!dir || args[0] !== "run") return args;
  const sub = name.replace(/[^a-z0-9]+/gi, "_");
  return ["run", `--cpu-prof-dir=${dir}/${sub}`, ...args.slice(1)];
}

/**
 * Runs `deno <args>` and waits until a stdout line parses as JSON and
 * `isReady` accepts it (returns non-undefined); later stdout is drained so
 * the child never blocks on a full pipe.
 * @throws ProcessError `exited` or `timeout` (the child is then killed).
 */
export async function spawnUntilReady<T>(
  args: string[],
  isReady: (line: unknown) => T | undefined,
  options: SpawnOptions = {},
): Promise<ReadyProcess<T>> {
  const name = options.name ?? args.find((a) => a.endsWith(".ts")) ?? "child";
  const timeoutMs = options.timeoutMs ?? 30_000;
  const [command, ...prefixArgs] = [
    ...(options.prefix ?? []),
    Deno.execPath(),
  ];
  const child = new Deno.Command(command!, {
    args: [...prefixArgs, ...withProfiler(withEnvV8Flags(args, name), name)],
    stdout: "piped",
    stderr: options.stderr ?? "inherit",
    stdin: "null",
    env: options.env,
  }).spawn();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const ready = await Promise.race([
      readReadyLine(reader, isReady, name),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new ProcessError(
                "timeout",
                `${name} was not ready within ${timeoutMs} ms`,
              ),
            ),
          timeoutMs,
        );
      }),
    ]);
    (async () => {
      try {
        while (!(await reader.read()).done) { /* drain */ }
      } catch { /* closed */ }
    })();
    return {
      child,
      ready,
      get exited() {
        return exited;
      },
      async stop(hard = false, graceMs = 10_000) {
        if (!exited) await stopChild(child, hard, graceMs);
        await status;
      },
    };
  } catch (e) {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await status;
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

async function readReadyLine<T>(
  reader: ReadableStreamDefaultReader<string>,
  isReady: (line: unknown) => T | undefined,
  name: string,
): Promise<T> {
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) {
      throw new ProcessError("exited", `${name} exited before it was ready`);
    }
    buf += value;
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        continue; // not a JSON line: a log line
      }
      const r = isReady(parsed);
      if (r !== undefined) return r;
    }
  }
}
