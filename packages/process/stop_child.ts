/**
 * Stops a child process: SIGCONT (a paused child could not act on
 * SIGTERM), SIGTERM (SIGKILL with `hard`), then SIGKILL if it has not
 * exited after `graceMs` (default 10 s); resolves when it has exited.
 */
export async function stopChild(
  child: Deno.ChildProcess,
  hard = false,
  graceMs = 10_000,
): Promise<Deno.CommandStatus> {
  try {
    child.kill("SIGCONT");
    child.kill(hard ? "SIGKILL" : "SIGTERM");
  } catch { /* already gone */ }
  const t = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, graceMs);
  try {
    return await child.status;
  } finally {
    clearTimeout(t);
  }
}

/**
 * The child's exit status if it exits within `ms`, else `undefined` (it
 * keeps running): for checking that a process stops on its own.
 */
export async function exitWithin(
  child: { status: Promise<Deno.CommandStatus> },
  ms: number,
): Promise<Deno.CommandStatus | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      child.status,
      new Promise<undefined>((r) => timer = setTimeout(() => r(undefined), ms)),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
