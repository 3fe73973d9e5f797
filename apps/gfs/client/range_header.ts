import { GfsError } from "../shared/gfs_error.ts";

/** A byte range: `length` bytes from `offset`. */
export interface ByteRange {
  /** First byte, from 0. */
  offset: number;
  /** Bytes in the range. */
  length: number;
}

/**
 * Parses an HTTP `Range` header (one range: `bytes=a-b`, `bytes=a-`,
 * `bytes=-n`) against a file of `size` bytes.
 * @returns null when there is no header (the whole file).
 * @throws GfsError `bad_request` for a malformed header, or
 *   `range_not_satisfiable` for a range starting past the end.
 */
export function parseRange(
  header: string | undefined,
  size: number,
): ByteRange | null {
  if (header === undefined) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (m === null || (m[1] === "" && m[2] === "")) {
    throw new GfsError(
      "bad_request",
      `malformed Range header ${JSON.stringify(header)}; use bytes=a-b`,
    );
  }
  if (m[1] === "") {
    const n = Number(m[2]);
    if (!Number.isSafeInteger(n)) {
      throw new GfsError("bad_request", "range too large");
    }
    const len = Math.min(n, size);
    return { offset: size - len, length: len };
  }
  const a = Number(m[1]);
  const b = m[2] === "" ? Math.max(a, size - 1) : Number(m[2]);
  if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b) || b < a) {
    throw new GfsError(
      "bad_request",
      `malformed Range header ${JSON.stringify(header)}`,
    );
  }
  if (a >= size) {
    throw new GfsError(
      "range_not_satisfiable",
      `range starts at ${a}, past the end (${size} bytes)`,
    );
  }
  return { offset: a, length: Math.min(b, size - 1) - a + 1 };
}
