/**
 * @module
 * Launching strata's node processes: {@link spawnUntilReady} starts
 * `deno run ...` and resolves once the child prints its JSON ready line.
 *
 * @example
 * ```ts
 * import { spawnUntilReady } from "@strata/process";
 * const p = await spawnUntilReady(
 *   ["run", "-A", "apps/gfs/master_main.ts", "--data-dir", "./data/m"],
 *   (line) => (line as { event?: string }).event === "listening" ? line : undefined,
 * );
 * await p.stop();
 * ```
 */
export {
  ProcessError,
  type ProcessErrorCode,
  type ReadyProcess,
  type SpawnOptions,
  spawnUntilReady,
} from "./ready_process.ts";
export {
  type ChildLines,
  collectLines,
  linesUntilKilled,
} from "./child_lines.ts";
export { freePort } from "./free_port.ts";
export { exitWithin, stopChild } from "./stop_child.ts";
export {
  RestartBudget,
  restartOnExit,
  type RestartPolicy,
  type SupervisedChild,
} from "./restart_on_exit.ts";
