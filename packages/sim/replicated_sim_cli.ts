/**
 * `deno task sim` (also `deno task sim:replicated`): seeded simulations of
 * `ReplicatedNode` clusters (see replicated_kv_sim.ts).
 *
 * - `--machine kv|gfs|gfs-store` (any form): the state machine: raft-kv
 *   (default), the GFS master's, or the GFS master through its
 *   `ReplicatedMasterStore`.
 * - `--membership`: every seed of 3+ voters changes its membership (by
 *   default none does).
 * - `--transfers`: every seed of 3+ voters hands leadership to another
 *   voter now and then (by default none does).
 * - `--seed S [--bug B]`: one run; prints its stats, and its trace when it
 *   fails.
 * - `--seeds N [--from S] [--jobs J] [--keep-going] [--bug B]`: N seeds from
 *   S (default 1), split over J processes (default 1); each process stops
 *   at its first failure (or, with `--keep-going`, runs on), printing the
 *   seed and the command that replays it.
 *
 * Exit code 0: every seed passed; 1: a seed failed; 2: bad arguments.
 */
import { type PlantedBug, plantedBugs } from "@strata/replication";
import {
  replayCommand,
  runReplicatedKvSimulation,
  type SimMachineName,
  simWorkloads,
} from "./replicated_kv_sim.ts";
import { isSimError, SimError } from "./sim_error.ts";

const USAGE =
  `deno task sim (or sim:replicated) --seed S | --seeds N [--from S] [--jobs J] [--keep-going] [--machine kv|gfs|gfs-store] [--membership] [--transfers] [--bug ${
    plantedBugs.join("|")
  }]`;

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i === -1) return undefined;
  const v = args[i + 1];
  if (v === undefined || v.startsWith("--")) {
    throw new SimError("bad_argument", `${name} needs a value`);
  }
  return v;
}

function int(args: string[], name: string, dflt: number, min = 0): number {
  const v = flag(args, name);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min || n >= 2 ** 32) {
    throw new SimError(
      "bad_argument",
      `${name} must be an integer in [${min}, 2^32), got ${v}`,
    );
  }
  return n;
}

const diskFaults = [
  "tornRecordsDropped",
  "fsyncFailures",
  "enospcFailures",
  "bitFlips",
  "tornHardStates",
  "refusedRecoveries",
  "snapshotDamages",
  "snapshotFallbacks",
  "lostNodes",
] as const;
type DiskFault = typeof diskFaults[number];
const noDiskFaults = () =>
  Object.fromEntries(diskFaults.map((k) => [k, 0])) as Record<
    DiskFault,
    number
  >;

interface Summary {
  seeds: number;
  ops: number;
  leaseReadsServed: number;
  crashes: number;
  pauses: number;
  inconclusive: number;
  /** Disk faults injected (and refused), summed over the seeds. */
  disk: Record<DiskFault, number>;
  /** Seeds that failed (only the first unless --keep-going). */
  failed: number[];
}

async function runRange(
  from: number,
  count: number,
  bug: PlantedBug | undefined,
  keepGoing: boolean,
  machine: SimMachineName,
  membership: number | undefined,
  transfers: number | undefined,
): Promise<Summary> {
  const s: Summary = {
    seeds: 0,
    ops: 0,
    leaseReadsServed: 0,
    crashes: 0,
    pauses: 0,
    inconclusive: 0,
    disk: noDiskFaults(),
    failed: [],
  };
  for (let seed = from; seed < from + count; seed++) {
    const r = await runReplicatedKvSimulation({
      seed,
      machine,
      membership,
      transfers,
      ...(bug ? { plantedBug: bug } : {}),
    });
    s.seeds++;
    if (s.seeds % 500 === 0) {
      console.error(
        `… ${s.seeds} seeds from ${from} done, ${s.failed.length} failed`,
      );
    }
    s.ops += r.stats.ops;
    s.leaseReadsServed += r.stats.leaseReadsServed;
    s.crashes += r.stats.crashes;
    s.pauses += r.stats.pauses;
    for (const k of diskFaults) s.disk[k] += r.stats[k];
    if (r.inconclusive) s.inconclusive++;
    if (!r.ok) {
      console.error(`\nFAILED seed ${seed}: ${r.failure}`);
      console.error(`replay: ${r.replay}`);
      s.failed.push(seed);
      if (!keepGoing) return s;
    }
  }
  return s;
}

/**
 * Runs the CLI.
 * @returns the exit code.
 */
export async function main(args: string[]): Promise<number> {
  let bug: PlantedBug | undefined;
  try {
    if (args.includes("--help") || args.includes("-h")) {
      console.log(`usage: ${USAGE}`);
      return 0;
    }
    const b = flag(args, "--bug");
    if (b !== undefined && !(plantedBugs as readonly string[]).includes(b)) {
      throw new SimError("bad_argument", `unknown --bug ${b}`);
    }
    bug = b as PlantedBug | undefined;
    const m = flag(args, "--machine") ?? "kv";
    if (!Object.hasOwn(simWorkloads, m)) {
      throw new SimError("bad_argument", `unknown --machine ${m}`);
    }
    const machine = m as SimMachineName;
    // Every seed of 3+ voters changes its membership (default: none).
    const membership = args.includes("--membership") ? 1 : undefined;
    // Every seed of 3+ voters hands leadership over now and then (default: none).
    const transfers = args.includes("--transfers") ? 1 : undefined;
    const one = flag(args, "--seed");
    if (one !== undefined) {
      const seed = int(args, "--seed", 0);
      const r = await runReplicatedKvSimulation({
        seed,
        machine,
        membership,
        transfers,
        ...(bug ? { plantedBug: bug } : {}),
      });
      console.log(JSON.stringify({ seed, ok: r.ok, stats: r.stats }));
      if (r.ok) return 0;
      console.log(r.trace.join("\n"));
      console.error(`\nFAILED seed ${seed}: ${r.failure}`);
      console.error(
        `replay: ${replayCommand(seed, bug, machine, membership, transfers)}`,
      );
      return 1;
    }
    const count = int(args, "--seeds", 100, 1);
    const from = int(args, "--from", 1);
    const jobs = int(args, "--jobs", 1, 1);
    const t0 = performance.now();
    let total: Summary;
    const keepGoing = args.includes("--keep-going");
    if (jobs === 1) {
      total = await runRange(
        from,
        count,
        bug,
        keepGoing,
        machine,
        membership,
        transfers,
      );
    } else {
      total = await fanOut(
        from,
        count,
        jobs,
        bug,
        keepGoing,
        machine,
        membership,
        transfers,
      );
    }
    const secs = (performance.now() - t0) / 1000;
    const line = `${total.seeds} seeds (${from}..${from + count - 1}${
      bug ? `, bug ${bug}` : ""
    }, ${machine}): ${total.ops} client operations, ${total.leaseReadsServed} lease reads served from the lease, ${total.crashes} crashes, ${total.pauses} pauses, ${total.inconclusive} checks out of time; disk: ${
      diskFaults.map((k) => `${total.disk[k]} ${k}`).join(", ")
    }; ${secs.toFixed(1)} s (${
      (secs * 1000 / Math.max(1, total.seeds)).toFixed(0)
    } ms/seed)`;
    if (Deno.env.get("STRATA_SIM_JSON")) {
      console.log(JSON.stringify({ ...total, secs }));
    } else console.log(line);
    if (total.failed.length > 0) {
      console.error(`failed seeds: ${total.failed.join(", ")}`);
    }
    return total.failed.length === 0 ? 0 : 1;
  } catch (e) {
    if (!isSimError(e, "bad_argument")) throw e;
    console.error(`${e.message}\nusage: ${USAGE}`);
    return 2;
  }
}

/** Splits the range over `jobs` child processes (one core each). */
async function fanOut(
  from: number,
  count: number,
  jobs: number,
  bug: PlantedBug | undefined,
  keepGoing: boolean,
  machine: SimMachineName,
  membership: number | undefined,
  transfers: number | undefined,
): Promise<Summary> {
  const per = Math.ceil(count / jobs);
  const parts = [];
  for (let j = 0; j < jobs; j++) {
    const start = from + j * per;
    const n = Math.min(per, from + count - start);
    if (n <= 0) break;
    const cmd = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL(import.meta.url).pathname,
        "--seeds",
        String(n),
        "--from",
        String(start),
        "--machine",
        machine,
        ...(bug ? ["--bug", bug] : []),
        ...(keepGoing ? ["--keep-going"] : []),
        ...(membership === 1 ? ["--membership"] : []),
        ...(transfers === 1 ? ["--transfers"] : []),
      ],
      env: { STRATA_SIM_JSON: "1" },
      stdout: "piped",
      stderr: "inherit",
    });
    parts.push(cmd.output());
  }
  const outs = await Promise.all(parts);
  const total: Summary = {
    seeds: 0,
    ops: 0,
    leaseReadsServed: 0,
    crashes: 0,
    pauses: 0,
    inconclusive: 0,
    disk: noDiskFaults(),
    failed: [],
  };
  for (const o of outs) {
    const s = JSON.parse(
      new TextDecoder().decode(o.stdout).trim().split("\n").pop()!,
    ) as Summary;
    total.seeds += s.seeds;
    total.ops += s.ops;
    total.leaseReadsServed += s.leaseReadsServed;
    total.crashes += s.crashes;
    total.pauses += s.pauses;
    total.inconclusive += s.inconclusive;
    for (const k of diskFaults) total.disk[k] += s.disk[k];
    total.failed.push(...s.failed);
  }
  return total;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
