/**
 * `deno task sim --seeds N [--from S]` runs N randomized replicated-KV
 * simulations starting at seed S (default 1); `--seed S [--trace]` replays
 * one. A failure prints the seed and the one-line command that replays it,
 * and the exit code is 1.
 */
import { runKvSimulation } from "./kv_simulation.ts";
import { isSimError, SimError } from "./sim_error.ts";

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i === -1) return undefined;
  const v = args[i + 1];
  if (v === undefined || v.startsWith("--")) {
    throw new SimError("bad_argument", `${name} needs a value`);
  }
  return v;
}

function int(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new SimError(
      "bad_argument",
      `${name} must be a non-negative integer, got ${v}`,
    );
  }
  return n;
}

/**
 * Runs the CLI with `args`.
 * @returns the exit code: 0 all seeds passed, 1 a seed failed, 2 bad arguments.
 */
export function main(args: string[]): number {
  try {
    return run(args);
  } catch (e) {
    if (!isSimError(e, "bad_argument")) throw e;
    console.error(`${e.message}\nusage: ${USAGE}`);
    return 2;
  }
}

const USAGE =
  "deno task sim --seeds N [--from S] | --seed S [--trace] [--duration MS]";

function run(args: string[]): number {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(`usage: ${USAGE}`);
    return 0;
  }
  const trace = args.includes("--trace");
  const one = flag(args, "--seed");
  const durationMs = int(flag(args, "--duration"), "--duration", 3000);
  const seeds = one !== undefined ? [int(one, "--seed", 0)] : Array.from(
    { length: int(flag(args, "--seeds"), "--seeds", 100) },
    (_, i) => i + int(flag(args, "--from"), "--from", 1),
  );
  const t0 = performance.now();
  let ops = 0;
  let unknown = 0;
  for (const seed of seeds) {
    try {
      const r = runKvSimulation({ seed, trace, durationMs });
      ops += r.operations;
      unknown += r.unknown;
      if (seeds.length === 1 || trace) {
        console.log(JSON.stringify(r, null, 2));
      }
    } catch (e) {
      console.error(
        `\nFAILED seed ${seed}: ${e instanceof Error ? e.message : e}`,
      );
      const replay = isSimError(e) && e.replay
        ? e.replay
        : `deno task sim --seed ${seed} --trace`;
      console.error(`replay: ${replay}`);
      return 1;
    }
  }
  const s = ((performance.now() - t0) / 1000).toFixed(1);
  console.log(
    `${seeds.length} seeds ok (${seeds[0]}..${seeds[seeds.length - 1]}): ` +
      `${ops} operations checked linearizable, ${unknown} with unknown outcome, ${s} s`,
  );
  return 0;
}

if (import.meta.main) Deno.exit(main(Deno.args));
