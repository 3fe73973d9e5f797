/**
 * Garbage collection of dead servers' commit logs (`server_log.ts`).
 *
 * A live server deletes its own log files once its tablets flushed past
 * them. A dead server's log (or the previous log of a server that lost its
 * kv session and registered again) has no writer left to do that: its
 * files, split pieces and markers would stay in GFS forever. This sweep
 * deletes such a log once no recovery can read it again.
 *
 * Who reads a log: a tablet's next owner reads the logs that the store's
 * claims name, from the store's log floor up (`readOldEntries`). So a dead
 * log is needed exactly while some store has a claim at an epoch at or
 * above its floor that names it; once every such tablet's new owner has
 * flushed what it replayed and raised the floor past that claim, no
 * reader ever opens the log again.
 *
 * Why the order below is safe:
 * 1. the log is sealed first: from then on its writer (a paused process
 *    whose session expired) acknowledges nothing more, so every record
 *    anyone was told is durable belongs to a claim created before the
 *    seal, hence before the listing of step 2;
 * 2. the stores' claims and floors are listed (floors only rise and
 *    claims are only added, so a claim below a floor in the listing stays
 *    unneeded);
 * 3. the logs no claim at or above its store's floor names are deleted,
 *    their seal last (a writer that appends after the seal's deletion
 *    recreates a file whose claim the next sweep sees, and keeps).
 */
import { type GfsClient, isGfsError } from "@strata/gfs";
import { claimedLog, FLOOR_DIR } from "./log_sources.ts";
import { SERVER_LOG_DIR } from "./log_split.ts";
import { SEAL_NAME } from "./server_log.ts";

/** What one sweep of dead server logs did. */
export interface LogSweepResult {
  /** Dead logs deleted (their directories). */
  removed: string[];
  /** Dead logs kept because a tablet's recovery may still read them. */
  kept: string[];
  /** Files deleted: the logs' files, pieces and markers, and old floor files. */
  files: number;
}

const CLAIM_RE = /^(.*)\/claims\/(\d{10})$/;
const FLOOR_RE = new RegExp(`^(.*)/${FLOOR_DIR}/(\\d{10})$`);

const gone = (e: unknown) => {
  if (!isGfsError(e, "not_found")) throw e;
};

/**
 * Deletes the server logs under `<root>/_logs/` whose kv session `isLive`
 * says is over and that no store under `root` may read again (see the
 * module comment), and each store's floor files below its highest.
 * A log whose directory name does not start with a session number is
 * left alone.
 */
export async function sweepDeadLogs(
  gfs: GfsClient,
  root: string,
  isLive: (server: string, session: number) => Promise<boolean>,
): Promise<LogSweepResult> {
  const out: LogSweepResult = { removed: [], kept: [], files: 0 };
  const base = `${root}/${SERVER_LOG_DIR}/`;
  const logs = new Set<string>();
  for (const f of await gfs.ls(base)) {
    const [server, inc] = f.path.slice(base.length).split("/");
    if (
      server && inc &&
      f.path.length > base.length + server.length + inc.length + 1
    ) {
      logs.add(`${base}${server}/${inc}`);
    }
  }
  const dead: string[] = [];
  for (const log of logs) {
    const [server, inc] = log.slice(base.length).split("/") as [
      string,
      string,
    ];
    const session = Number(inc.slice(0, inc.indexOf("-")));
    if (inc.indexOf("-") <= 0 || !Number.isSafeInteger(session)) continue;
    if (!await isLive(server, session)) dead.push(log);
  }
  if (dead.length === 0) return out;
  // 1. Seal: nothing more is acknowledged from these logs.
  await Promise.all(
    dead.map((log) =>
      gfs.upload(`${log}/${SEAL_NAME}`, new Uint8Array(0)).catch((e) => {
        if (!isGfsError(e, "conflict")) throw e;
      })
    ),
  );
  // 2. The stores' floors and claims, in one listing.
  const floors = new Map<string, string[]>();
  const claims = new Map<string, { path: string; epoch: number }[]>();
  for (const f of await gfs.ls(`${root}/`)) {
    if (f.path.startsWith(base)) continue;
    const fl = FLOOR_RE.exec(f.path);
    if (fl) {
      const list = floors.get(fl[1]!) ?? [];
      floors.set(fl[1]!, list);
      list.push(f.path);
      continue;
    }
    const c = CLAIM_RE.exec(f.path);
    if (c) {
      const list = claims.get(c[1]!) ?? [];
      claims.set(c[1]!, list);
      list.push({ path: f.path, epoch: Number(c[2]) });
    }
  }
  const needed = new Set<string>();
  const deadSet = new Set(dead);
  for (const [store, list] of claims) {
    const fl = (floors.get(store) ?? []).sort();
    const floor = fl.length === 0 ? 0 : Number(fl.at(-1)!.slice(-10));
    for (const c of list) {
      if (c.epoch < floor) continue;
      const log = await claimedLog(gfs, c.path);
      if (log !== undefined && deadSet.has(log)) needed.add(log);
    }
  }
  // Floors below a store's highest are never read (readers take the highest).
  for (const fl of floors.values()) {
    for (const p of fl.sort().slice(0, -1)) {
      await gfs.remove(p).then(() => out.files++, gone);
    }
  }
  // 3. Delete the logs nobody needs: everything, the seal last.
  for (const log of dead) {
    if (needed.has(log)) {
      out.kept.push(log);
      continue;
    }
    const files = (await gfs.ls(`${log}/`)).map((f) => f.path);
    const seal = `${log}/${SEAL_NAME}`;
    for (const p of files) {
      if (p !== seal) await gfs.remove(p).then(() => out.files++, gone);
    }
    await gfs.remove(seal).then(() => out.files++, gone);
    out.removed.push(log);
  }
  return out;
}
