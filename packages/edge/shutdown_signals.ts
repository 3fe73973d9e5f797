/**
 * Signal handling for node processes: SIGINT and SIGTERM run one stop
 * function once and exit; a second signal while stopping exits at once.
 */

/**
 * Runs `stop` on the first SIGINT/SIGTERM, then exits with `exitCode`
 * (default 0); a second signal exits with 130 without waiting.
 * @returns a function removing the listeners.
 */
export function onShutdown(
  stop: () => Promise<void> | void,
  exitCode = 0,
): () => void {
  let stopping = false;
  const handler = async () => {
    if (stopping) Deno.exit(130);
    stopping = true;
    try {
      await stop();
    } catch (e) {
      console.error(
        `error while stopping: ${e instanceof Error ? e.message : e}`,
      );
    }
    Deno.exit(exitCode);
  };
  Deno.addSignalListener("SIGINT", handler);
  Deno.addSignalListener("SIGTERM", handler);
  return () => {
    Deno.removeSignalListener("SIGINT", handler);
    Deno.removeSignalListener("SIGTERM", handler);
  };
}
