/**
 * The ready line: the one JSON line a node process prints on stdout once
 * it serves, so launchers and tests learn its bound addresses.
 */

/** Fields of a ready line besides `event`. */
export type ReadyFields = Record<string, string | number | boolean>;

/** Prints `{"event":"ready", ...fields}` as one line on stdout. */
export function printReadyLine(fields: ReadyFields): void {
  console.log(JSON.stringify({ event: "ready", ...fields }));
}

/**
 * For `spawnUntilReady`: the line's fields when it is a ready line that
 * has every string field of `required`, else undefined.
 */
export function readyLine<K extends string>(
  line: unknown,
  required: readonly K[],
): (Record<K, string> & Record<string, unknown>) | undefined {
  if (typeof line !== "object" || line === null) return undefined;
  const m = line as Record<string, unknown>;
  if (m.event !== "ready") return undefined;
  for (const k of required) if (typeof m[k] !== "string") return undefined;
  return m as Record<K, string> & Record<string, unknown>;
}
