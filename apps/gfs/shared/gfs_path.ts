import { GfsError } from "./gfs_error.ts";

/** Longest path accepted, bytes of UTF-16 text. */
export const MAX_PATH_LENGTH = 1024;
/** Top-level directory where deleted files wait (hidden from `ls`). */
export const TRASH_DIR = "/.trash";

const SEGMENT = /^[A-Za-z0-9._~@+=,-]+$/;

/**
 * Validates and normalises a file path: absolute, `/`-separated, segments
 * of `[A-Za-z0-9._~@+=,-]`, no `.`/`..`, no empty segment, at most
 * {@link MAX_PATH_LENGTH} characters.
 *
 * @returns the path without a trailing slash.
 * @throws GfsError `bad_request` when it is not a valid file path.
 */
export function parsePath(raw: string): string {
  if (typeof raw !== "string" || raw.length === 0) {
    throw new GfsError("bad_request", "path is empty");
  }
  if (raw.length > MAX_PATH_LENGTH) {
    throw new GfsError(
      "bad_request",
      `path longer than ${MAX_PATH_LENGTH} characters`,
    );
  }
  if (!raw.startsWith("/")) {
    throw new GfsError("bad_request", `path must start with "/": ${raw}`);
  }
  const segs = raw.slice(1).split("/");
  if (segs.length > 0 && segs[segs.length - 1] === "" && segs.length > 1) {
    segs.pop();
  }
  if (segs.length === 0 || (segs.length === 1 && segs[0] === "")) {
    throw new GfsError("bad_request", "the root is not a file path");
  }
  for (const s of segs) {
    if (s === "" || s === "." || s === ".." || !SEGMENT.test(s)) {
      throw new GfsError(
        "bad_request",
        `bad path segment ${JSON.stringify(s)} in ${JSON.stringify(raw)}`,
      );
    }
  }
  return "/" + segs.join("/");
}

/**
 * Validates a listing prefix: empty or "/" mean everything, otherwise a
 * path (a trailing "/" is kept, so "/a/" lists inside /a only).
 * @throws GfsError `bad_request`.
 */
export function parsePrefix(raw: string): string {
  if (raw === "" || raw === "/") return "/";
  const dirOnly = raw.endsWith("/");
  const p = parsePath(dirOnly ? raw.slice(0, -1) : raw);
  return dirOnly ? p + "/" : p;
}

/** Ancestors of a normalised path, shallowest first: /a/b/c → [/a, /a/b]. */
export function ancestors(path: string): string[] {
  const segs = path.slice(1).split("/");
  const out: string[] = [];
  for (let i = 1; i < segs.length; i++) {
    out.push("/" + segs.slice(0, i).join("/"));
  }
  return out;
}

/** Depth of a normalised path: "/a" is 1, "/a/b" is 2. */
export function pathDepth(path: string): number {
  let n = 0;
  for (const c of path) if (c === "/") n++;
  return n;
}

/** Hidden name a deleted file gets: `/.trash/<deletedAtMs>/<path>`. */
export function trashPath(path: string, deletedAtMs: number): string {
  return `${TRASH_DIR}/${deletedAtMs}${path}`;
}

/** Splits a trash path back into its deletion time and original path, or null. */
export function parseTrashPath(
  path: string,
): { deletedAtMs: number; original: string } | null {
  const m = /^\/\.trash\/(\d+)(\/.+)$/.exec(path);
  if (m === null) return null;
  return { deletedAtMs: Number(m[1]), original: m[2]! };
}
