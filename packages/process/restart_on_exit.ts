/**
 * A launcher acting as a supervisor (as systemd's `Restart=on-failure`
 * with a start limit): a child that exits without being asked to — a
 * crash, kill -9, or a node that exits on purpose after a failed disk
 * write — is reported and started again after a delay, a bounded number
 * of times per window, then left down and reported.
 */

/** How a launcher restarts its children. Every field has a default. */
export interface RestartPolicy {
  /** Wait before starting a child again, ms (default 1000). */
  delayMs?: number;
  /** Restarts allowed within `windowMs` before the child is left down (default 5). */
  maxRestarts?: number;
  /** The window of `maxRestarts`, ms (default 60,000). */
  windowMs?: number;
  /** Where the reports go (default `console.error`). */
  log?: (line: string) => void;
  /**
   * Exit codes that say a restart cannot help (systemd's
   * `RestartPreventExitStatus=`): such a child is reported and left down
   * at once. The kv and GFS launchers pass 65, a replica refusing to start
   * on damaged data.
   */
  noRestartCodes?: readonly number[];
}

/** One supervised child, as its launcher knows it. */
export interface SupervisedChild {
  /** Name in reports ("kv node 2"). */
  name: string;
  /** True when the launcher asked for the exit (stop, kill): no restart. */
  asked(): boolean;
  /** Starts the child again (the launcher watches the new one in turn). */
  restart(): Promise<unknown>;
}

/** The restarts of one child within a sliding window, on the monotonic clock. */
export class RestartBudget {
  readonly #max: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  #restarts: number[] = [];

  constructor(
    policy: RestartPolicy = {},
    now: () => number = () => performance.now(),
  ) {
    this.#max = policy.maxRestarts ?? 5;
    this.#windowMs = policy.windowMs ?? 60_000;
    this.#now = now;
  }

  /** Takes one restart; false when `maxRestarts` were taken within the window. */
  take(): boolean {
    const now = this.#now();
    this.#restarts = this.#restarts.filter((t) => now - t < this.#windowMs);
    if (this.#restarts.length >= this.#max) return false;
    this.#restarts.push(now);
    return true;
  }
}

/**
 * Watches `child`: when it exits and `who.asked()` is false, reports the
 * exit (code or signal), waits `delayMs` and calls `who.restart()`,
 * retrying a failed restart the same way, while `budget` allows.
 * @returns a promise that settles once this child's exit was handled.
 */
export function restartOnExit(
  child: Deno.ChildProcess,
  who: SupervisedChild,
  budget: RestartBudget,
  policy: RestartPolicy = {},
): Promise<void> {
  const log = policy.log ?? ((l: string) => console.error(l));
  const delayMs = policy.delayMs ?? 1000;
  return child.status.then(async (status) => {
    if (who.asked()) return;
    let what = status.signal !== null
      ? `was killed by ${status.signal}`
      : `exited with code ${status.code}`;
    if (
      status.signal === null && policy.noRestartCodes?.includes(status.code)
    ) {
      log(
        `${who.name} ${what}; not restarted: that code says a restart cannot help (see its log)`,
      );
      return;
    }
    for (;;) {
      if (!budget.take()) {
        log(
          `${who.name} ${what}; not restarted: ${
            policy.maxRestarts ?? 5
          } restarts within ${(policy.windowMs ?? 60_000) / 1000} s, left down`,
        );
        return;
      }
      log(`${who.name} ${what}; restarting it in ${delayMs} ms`);
      await new Promise((r) => setTimeout(r, delayMs));
      if (who.asked()) return;
      try {
        await who.restart();
        log(`${who.name} restarted`);
        return;
      } catch (e) {
        what = `did not restart (${e instanceof Error ? e.message : e})`;
      }
    }
  });
}
