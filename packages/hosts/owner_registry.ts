/**
 * Who owns which namespaces and links, on disk, so that what an
 * interrupted run left behind (kill -9, a crashed test runner) is found and
 * removed by the next harness on the machine. Every name the harness makes
 * carries its instance id: netns `strata-hosts-<id>-…`, links `sth<id>…`.
 */
import { HostsError } from "./hosts_error.ts";

/** Where owner records and the setup lock live (tmpfs: gone on reboot, as namespaces are). */
export const STATE_DIR = "/run/strata-hosts";

/** Namespace names made by the harness: `strata-hosts-<id>-<host>`. */
export const NETNS_PATTERN = /^strata-hosts-([0-9a-f]{6})-\S+$/;
/** Link names made by the harness: `sth<id>b` (bridge), `sth<id>v<n>`, `sth<id>p<n>` (veth ends). */
export const LINK_PATTERN = /^sth([0-9a-f]{6})[bvp]\d*$/;

/** The owner of one harness instance. */
interface OwnerRecord {
  pid: number;
  /** Start time of the process (field 22 of /proc/PID/stat), so a reused pid is not mistaken for the owner. */
  start: string;
}

/** The start time of process `pid`, or undefined when it does not exist. */
export function processStart(pid: number): string | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Fields after the command name, which is in parentheses and may hold spaces.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return rest[19]; // field 22 overall
  } catch {
    return undefined;
  }
}

/** Records that this process owns instance `id` (before creating anything of it). */
export function recordOwner(id: string): void {
  const rec: OwnerRecord = { pid: Deno.pid, start: processStart(Deno.pid)! };
  Deno.writeTextFileSync(`${STATE_DIR}/${id}.json`, JSON.stringify(rec));
}

/** Forgets instance `id` (after everything of it is removed). */
export function forgetOwner(id: string): void {
  try {
    Deno.removeSync(`${STATE_DIR}/${id}.json`);
  } catch { /* already gone */ }
}

/** True when the process that recorded instance `id` is still running. */
export function ownerAlive(id: string): boolean {
  let rec: OwnerRecord;
  try {
    rec = JSON.parse(Deno.readTextFileSync(`${STATE_DIR}/${id}.json`));
  } catch {
    return false;
  }
  return processStart(rec.pid) === rec.start;
}

/**
 * Runs `fn` holding the machine-wide setup lock, so two harnesses (in two
 * test processes) never choose the same subnet or sweep each other's
 * half-built network.
 */
export async function withSetupLock<T>(fn: () => Promise<T>): Promise<T> {
  try {
    Deno.mkdirSync(STATE_DIR, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new HostsError(
      "unavailable",
      `cannot create ${STATE_DIR}: ${e instanceof Error ? e.message : e}`,
    );
  }
  const file = await Deno.open(`${STATE_DIR}/setup.lock`, {
    create: true,
    write: true,
  });
  try {
    await file.lock(true);
    return await fn();
  } finally {
    file.close(); // closing releases the lock
  }
}
