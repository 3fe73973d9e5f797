import { type GfsClient, isGfsError } from "@strata/gfs";
import { z } from "zod";
import { decodeBlock, type LogEntry } from "./log_format.ts";
import { decodeSections } from "./server_log_format.ts";
import { LOG_FILE_RE } from "./server_log.ts";

/**
 * A store's log floor: `<store>/logfloor/<epoch>` says that the store's
 * tables cover every record its owners before `epoch` wrote, so a
 * recovery reads only the logs of owners from `epoch` on.
 */
export const FLOOR_DIR = "logfloor";
/** A split server log's marker: `<log>/split.done` holds the split's id. */
export const SPLIT_DONE = "split.done";

const ClaimSchema = z.object({ log: z.string().startsWith("/").optional() });
const pad = (n: number) => String(n).padStart(10, "0");
const dec = new TextDecoder();

/** `f` of `path`, or `fallback` when the file is gone. */
async function orGone<T>(f: () => Promise<T>, fallback: T): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (isGfsError(e, "not_found")) return fallback;
    throw e;
  }
}

/**
 * The server log the claim file `claim` names (undefined: none, or the
 * claim is gone).
 * @throws Error when the file is not a claim.
 */
export async function claimedLog(
  gfs: GfsClient,
  claim: string,
): Promise<string | undefined> {
  const bytes = await orGone(() => gfs.readAll(claim), undefined);
  if (bytes === undefined) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(dec.decode(bytes));
  } catch {
    json = undefined;
  }
  const parsed = ClaimSchema.safeParse(json);
  if (!parsed.success) {
    throw new Error(`${claim}: not a claim: ${parsed.error.message}`);
  }
  return parsed.data.log;
}

/**
 * The entries of the store `store` (GFS directory `path`) that its owners
 * before `epoch` wrote and that its tables may not cover:
 * - the server logs named by the claims of epochs from the store's log
 *   floor up to `epoch - 1`: from the log's split piece for this store
 *   when the log was split (a dead server's: `log_split.ts`), else from
 *   the log's files, keeping this store's sections;
 * - the store's own per-tablet log files (`<path>/log/`, written before
 *   logs were per server).
 * Order does not matter: `resolveLog` decides what is the history.
 */
export async function readOldEntries(
  gfs: GfsClient,
  path: string,
  store: string,
  epoch: number,
): Promise<LogEntry[]> {
  let floor = 0;
  for (const f of await gfs.ls(`${path}/${FLOOR_DIR}/`)) {
    const n = Number(f.path.slice(f.path.lastIndexOf("/") + 1));
    if (Number.isSafeInteger(n) && n > floor) floor = n;
  }
  const logs = new Set<string>();
  for (const f of await gfs.ls(`${path}/claims/`)) {
    const n = Number(f.path.slice(f.path.lastIndexOf("/") + 1));
    if (!Number.isSafeInteger(n) || n < floor || n >= epoch) continue;
    const log = await claimedLog(gfs, f.path);
    if (log !== undefined) logs.add(log);
  }
  const parts = await Promise.all([
    ...[...logs].map((log) => readFromServerLog(gfs, log, store)),
    readPerTabletLog(gfs, `${path}/log/`),
  ]);
  return parts.flat();
}

/** Store `store`'s entries in the server log `log`. */
async function readFromServerLog(
  gfs: GfsClient,
  log: string,
  store: string,
): Promise<LogEntry[]> {
  const split = await orGone(() => gfs.readAll(`${log}/${SPLIT_DONE}`), null);
  if (split !== null) {
    const piece = await orGone(
      () => gfs.readAll(`${log}/split-${dec.decode(split)}/${store}`),
      null,
    );
    return piece === null ? [] : decodeBlock(piece).entries;
  }
  const out: LogEntry[] = [];
  const files = (await gfs.ls(`${log}/`)).filter((f) =>
    LOG_FILE_RE.test(f.path) && f.path.lastIndexOf("/") === log.length
  );
  for (const f of files) {
    await orGone(async () => {
      for await (const block of gfs.readRecords(f.path)) {
        for (const s of decodeSections(block)) {
          if (s.dir === store) out.push(...s.entries);
        }
      }
    }, undefined);
  }
  return out;
}

/** The entries of a store's own (per-tablet) log files under `prefix`. */
async function readPerTabletLog(
  gfs: GfsClient,
  prefix: string,
): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for (const f of await gfs.ls(prefix)) {
    // Deleted meanwhile by a predecessor once its tables covered it.
    await orGone(async () => {
      for await (const block of gfs.readRecords(f.path)) {
        out.push(...decodeBlock(block).entries);
      }
    }, undefined);
  }
  return out;
}

/**
 * Records that the store's tables cover every record of its owners
 * before `epoch` (after this owner's recovery flushed them), and deletes
 * its per-tablet log files, which only such owners wrote.
 */
export async function raiseFloor(
  gfs: GfsClient,
  path: string,
  epoch: number,
): Promise<void> {
  await gfs.upload(`${path}/${FLOOR_DIR}/${pad(epoch)}`, new Uint8Array(0))
    .catch((e) => {
      if (!isGfsError(e, "conflict")) throw e;
    });
  for (const f of await gfs.ls(`${path}/log/`)) {
    await orGone(() => gfs.remove(f.path), "");
  }
}
