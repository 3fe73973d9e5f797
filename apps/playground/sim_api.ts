/**
 * Simulation replay for the dashboard: packages/sim's scenarios (on
 * production `ReplicatedNode`s), with a pasted seed line read by
 * `replayInput` and its errors turned into 400s; and a `sim:replicated`
 * seed (the production `ReplicatedNode` with a planted bug, or none) run
 * with its messages and ticks observed, as a step-by-step timeline
 * (replicated_replay.ts).
 */
import { type PlantedBug, plantedBugs } from "@strata/replication";
import { isSimError, listScenarios, replayInput } from "@strata/sim";
import {
  replayCommand,
  runReplicatedKvSimulation,
} from "@strata/sim/replicated";
import type { ReplicatedQuery, SimApi } from "./playground_backend.ts";
import { PlaygroundError } from "./playground_error.ts";
import {
  buildReplay,
  type Observation,
  type ReplicatedReplay,
} from "./replicated_replay.ts";

/**
 * Seeds one `find` tries at most: bounds a request's time. Most planted bugs
 * are found within it from seed 1; some are rarer (`find` then shows the last
 * seed's passing run, and another start seed may find one).
 */
export const FIND_SEEDS = 30;

/**
 * The real {@link SimApi}. A pasted line that names a scenario (a failing
 * test's replay command) runs that scenario; otherwise `scenario` runs
 * (with a note when the line came from a test without a scenario).
 */
export function createSimApi(): SimApi {
  // One replicated run at a time: each takes a second or two of CPU.
  let running = false;
  return {
    scenarios: () => listScenarios(),
    async replay(scenario, seedInput) {
      try {
        return await replayInput(scenario, seedInput);
      } catch (e) {
        if (isSimError(e, "bad_argument")) {
          throw new PlaygroundError("bad_request", e.message);
        }
        throw e;
      }
    },
    bugs: () => [...plantedBugs],
    async replicated(q) {
      if (running) {
        throw new PlaygroundError(
          "conflict",
          "a replicated simulation is running; try again when it is done",
        );
      }
      running = true;
      try {
        return await runReplicated(q);
      } finally {
        running = false;
      }
    },
  };
}

async function runReplicated(q: ReplicatedQuery): Promise<ReplicatedReplay> {
  const bug = q.bug as PlantedBug | undefined;
  const last = q.find ? q.seed + FIND_SEEDS - 1 : q.seed;
  let replay: ReplicatedReplay | undefined;
  for (let seed = q.seed; seed <= last; seed++) {
    const observed: Observation[] = [];
    const r = await runReplicatedKvSimulation({
      seed,
      machine: q.machine,
      ...(bug ? { plantedBug: bug } : {}),
      observe: (e) => observed.push(e),
    });
    replay = buildReplay({
      machine: q.machine,
      seed,
      bug: bug ?? null,
      command: replayCommand(seed, bug, q.machine),
      ok: r.ok,
      ...(r.code ? { code: r.code } : {}),
      ...(r.failure ? { failure: r.failure } : {}),
      nodes: r.stats.nodes,
      trace: r.trace,
      history: r.history,
      observed,
    });
    if (!r.ok) return replay;
  }
  return replay!;
}
