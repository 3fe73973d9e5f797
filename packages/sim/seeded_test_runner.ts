import { isSimError } from "./sim_error.ts";

/** True when the long variants should run (`STRATA_LONG=1`). */
export const LONG = Deno.env.get("STRATA_LONG") === "1";

/**
 * The seeds a seeded test should run: `STRATA_SEED` (replay one), or
 * `count` seeds from `first` (`longCount` under STRATA_LONG).
 */
export function testSeeds(
  count: number,
  longCount = count * 10,
  first = 1,
): number[] {
  const one = Deno.env.get("STRATA_SEED");
  if (one !== undefined) return [Number(one)];
  const n = LONG ? longCount : count;
  return Array.from({ length: n }, (_, i) => first + i);
}

/**
 * Runs `fn(seed)` for each seed; on the first failure prints the seed and a
 * one-line command that replays it, then rethrows.
 */
export function runSeeded(
  file: string,
  testName: string,
  seeds: readonly number[],
  fn: (seed: number) => void,
): void {
  for (const seed of seeds) {
    try {
      fn(seed);
    } catch (e) {
      throw seedFailed(file, testName, seed, e);
    }
  }
}

/** {@link runSeeded} for an async `fn` (simulations of `ReplicatedNode`). */
export async function runSeededAsync(
  file: string,
  testName: string,
  seeds: readonly number[],
  fn: (seed: number) => Promise<void>,
): Promise<void> {
  for (const seed of seeds) {
    try {
      await fn(seed);
    } catch (e) {
      throw seedFailed(file, testName, seed, e);
    }
  }
}

/** Prints the seed and its replay command; tags a SimError with them. */
function seedFailed(
  file: string,
  testName: string,
  seed: number,
  e: unknown,
): unknown {
  const replay = `STRATA_SEED=${seed} deno test -A ${file} --filter ${
    JSON.stringify(testName)
  }`;
  console.error(`\nsimulation failed with seed ${seed}\nreplay: ${replay}`);
  if (isSimError(e)) {
    e.seed = seed;
    e.replay = replay;
  }
  return e;
}
