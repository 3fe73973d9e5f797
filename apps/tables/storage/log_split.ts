import { type GfsClient, isGfsError } from "@strata/gfs";
import { encodeBlock } from "./log_format.ts";
import { splitByTablet } from "./server_log_format.ts";
import { LOG_FILE_RE, SEAL_NAME } from "./server_log.ts";
import { SPLIT_DONE } from "./log_sources.ts";

/** The servers' logs are under `<gfs root>/_logs/<server>/` (no table name starts with `_`). */
export const SERVER_LOG_DIR = "_logs";

/** What splitting one server log did. */
export interface SplitResult {
  /** The log's directory. */
  log: string;
  /** Tablets with a piece, entries and log files read; 0s when it was already split. */
  tablets: number;
  entries: number;
  files: number;
}

const ignore = (code: Parameters<typeof isGfsError>[1]) => (e: unknown) => {
  if (!isGfsError(e, code)) throw e;
};

/**
 * Splits the server log in `dir` (a dead server's) by tablet, as the
 * BigTable paper sorts a dead server's log so each recovering server
 * reads only its tablets' entries:
 * 1. seals it (`<dir>/sealed`): from then on its writer acknowledges
 *    nothing more (it checks the seal after each append), so every
 *    acknowledged record is already in the files read next;
 * 2. reads every log file once and writes each tablet's entries, in log
 *    order, to `<dir>/split-<id>/<store>` (one GFS file per tablet);
 * 3. writes `<dir>/split.done` = `<id>`: readers use the pieces from then
 *    on (before it, they read the log's files themselves, which is
 *    correct but reads the whole log).
 * A splitter that dies part-way leaves no marker; the next one starts
 * over under a new id. Idempotent once done.
 */
export async function splitServerLog(
  gfs: GfsClient,
  dir: string,
): Promise<SplitResult> {
  const none = { log: dir, tablets: 0, entries: 0, files: 0 };
  try {
    await gfs.stat(`${dir}/${SPLIT_DONE}`);
    return none;
  } catch (e) {
    ignore("not_found")(e);
  }
  await gfs.upload(`${dir}/${SEAL_NAME}`, new Uint8Array(0)).catch(
    ignore("conflict"),
  );
  const files = (await gfs.ls(`${dir}/`)).filter((f) =>
    LOG_FILE_RE.test(f.path) && f.path.lastIndexOf("/") === dir.length
  );
  const blocks: Uint8Array[] = [];
  for (const f of files) {
    try {
      for await (const b of gfs.readRecords(f.path)) blocks.push(b);
    } catch (e) {
      // Its writer deleted it (no tablet needed it) before the seal.
      ignore("not_found")(e);
    }
  }
  const pieces = splitByTablet(blocks);
  const id = crypto.randomUUID().slice(0, 8);
  let entries = 0;
  await Promise.all(
    [...pieces].map(async ([store, list]) => {
      entries += list.length;
      await gfs.upload(`${dir}/split-${id}/${store}`, encodeBlock(list));
    }),
  );
  await gfs.upload(`${dir}/${SPLIT_DONE}`, new TextEncoder().encode(id))
    .catch(ignore("conflict"));
  return { log: dir, tablets: pieces.size, entries, files: files.length };
}

/**
 * Splits the logs of tablet server `server` under `logRoot` (one per
 * process and kv session: `<logRoot>/<server>/<session>-<nonce>`) that
 * are not split yet, except those whose session `isLive` says is still
 * the server's (a restarted server keeps writing to its new log), and
 * those whose files hold fewer than `minBytes` (reading a small log whole
 * costs each recovering server less than a split costs the recovery:
 * one GFS upload per tablet before any tablet is reassigned).
 */
export async function splitDeadServerLogs(
  gfs: GfsClient,
  logRoot: string,
  server: string,
  isLive: (session: number) => Promise<boolean>,
  minBytes = 0,
): Promise<SplitResult[]> {
  const base = `${logRoot}/${server}/`;
  const logs = new Map<string, { done: boolean; bytes: number }>();
  for (const f of await gfs.ls(base)) {
    const inc = f.path.slice(base.length).split("/")[0]!;
    const log = logs.get(inc) ?? { done: false, bytes: 0 };
    logs.set(inc, log);
    if (f.path === `${base}${inc}/${SPLIT_DONE}`) log.done = true;
    const isFile = f.path.lastIndexOf("/") === base.length + inc.length;
    if (isFile && LOG_FILE_RE.test(f.path)) log.bytes += f.length;
  }
  const out: SplitResult[] = [];
  for (const [inc, { done, bytes }] of logs) {
    if (done || bytes < minBytes) continue;
    const session = Number(inc.slice(0, inc.indexOf("-")));
    if (Number.isSafeInteger(session) && await isLive(session)) continue;
    out.push(await splitServerLog(gfs, `${base}${inc}`));
  }
  return out;
}
