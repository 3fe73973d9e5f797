import { closeSync, openSync, readSync } from "node:fs";
import { asStorageError } from "./storage_error.ts";

/**
 * A read-only file handle for positioned reads: each `readAt` is one
 * `pread(2)` (node:fs `readSync` with a position, which Deno implements
 * with `pread64`), so it neither moves nor depends on a file position and
 * concurrent readers need no mutex. `Deno.FsFile` has no positioned read;
 * its seek + read would be two system calls.
 */
export class PositionedReader {
  #fd: number | null;
  /** The file read. */
  readonly path: string;

  private constructor(path: string, fd: number) {
    this.path = path;
    this.#fd = fd;
  }

  /** Opens `path` for reading. @throws StorageError `io`. */
  static open(path: string): PositionedReader {
    try {
      return new PositionedReader(path, openSync(path, "r"));
    } catch (e) {
      throw asStorageError(e, `cannot open ${path}`);
    }
  }

  /**
   * Reads `length` bytes at byte `offset` (into `into` when it is large
   * enough, else a fresh buffer).
   *
   * @returns the bytes; shorter than `length` only when the file ends first.
   * @throws StorageError `closed` after {@link close}, `io`.
   */
  readAt(offset: number, length: number, into?: Uint8Array): Uint8Array {
    const fd = this.#fd;
    if (fd === null) throw asStorageError(new Error("closed"), this.path);
    const buf = into !== undefined && into.length >= length
      ? into.subarray(0, length)
      : new Uint8Array(length);
    let got = 0;
    while (got < length) {
      const n = readSync(fd, buf, got, length - got, offset + got);
      if (n === 0) break;
      got += n;
    }
    return got === length ? buf : buf.subarray(0, got);
  }

  /** Closes the handle. Idempotent. */
  close(): void {
    if (this.#fd === null) return;
    const fd = this.#fd;
    this.#fd = null;
    closeSync(fd);
  }
}

/**
 * Reads `length` bytes at `offset` of a `Deno.FsFile` with seek + read
 * (for files read sequentially in chunks, such as snapshots).
 *
 * @returns the bytes; shorter than `length` only when the file ends first.
 */
export function readAtSync(
  file: Deno.FsFile,
  offset: number,
  length: number,
): Uint8Array {
  const buf = new Uint8Array(length);
  file.seekSync(offset, Deno.SeekMode.Start);
  let got = 0;
  while (got < length) {
    const n = file.readSync(buf.subarray(got));
    if (n === null || n === 0) break;
    got += n;
  }
  return got === length ? buf : buf.subarray(0, got);
}
