/**
 * Simulation replay for the dashboard: packages/sim's scenarios, with a
 * pasted seed line parsed by `parseSeed` and its errors turned into 400s.
 */
import {
  isSimError,
  listScenarios,
  parseSeed,
  replayScenario,
} from "@strata/sim";
import type { SimApi } from "./playground_backend.ts";
import { PlaygroundError } from "./playground_error.ts";

/**
 * The real {@link SimApi}. A pasted line that names a scenario (a failing
 * test's replay command) runs that scenario; otherwise `scenario` runs.
 */
export function createSimApi(): SimApi {
  return {
    scenarios: () => listScenarios(),
    replay(scenario, seedInput) {
      try {
        const parsed = parseSeed(seedInput);
        return replayScenario(parsed.scenario ?? scenario, parsed.seed);
      } catch (e) {
        if (isSimError(e, "bad_argument")) {
          throw new PlaygroundError("bad_request", e.message);
        }
        throw e;
      }
    },
  };
}
