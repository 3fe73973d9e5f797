import { basename, dirname, join } from "node:path";
import { asStorageError } from "./storage_error.ts";

/**
 * Forces a directory's entries (creations, renames, deletions) to stable
 * storage. On Linux `fsync` on a directory descriptor does this, and Deno
 * can open a directory read-only and sync it. On Windows directories cannot
 * be opened this way; there the call is skipped (NTFS journals metadata).
 *
 * @throws StorageError `io` when the directory cannot be synced.
 */
export async function syncDir(dir: string): Promise<void> {
  if (Deno.build.os === "windows") return;
  let f: Deno.FsFile | undefined;
  try {
    f = await Deno.open(dir, { read: true });
    await f.sync();
  } catch (e) {
    throw asStorageError(e, `cannot sync directory ${dir}`);
  } finally {
    f?.close();
  }
}

/** Whether `path` exists (any other error than "not found" is thrown). */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Writes all of `bytes`, looping over short writes. */
export async function writeAll(
  file: Deno.FsFile,
  bytes: Uint8Array,
): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await file.write(bytes.subarray(off));
}

/** Synchronous {@link writeAll}. */
export function writeAllSync(file: Deno.FsFile, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) off += file.writeSync(bytes.subarray(off));
}

/**
 * Replaces `path` with new contents so that a crash at any moment leaves
 * either the old file or the complete new one, never a mix: write a
 * temporary file beside it, fsync it, rename it over `path`, fsync the
 * directory so the rename itself is durable.
 *
 * @param data the bytes, or chunks streamed from an async iterable (so large
 *   contents need no single buffer).
 * @returns bytes written.
 * @throws StorageError `io`; the temporary file is removed on failure.
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
): Promise<number> {
  const dir = dirname(path);
  const tmp = join(
    dir,
    `.${basename(path)}.tmp-${Deno.pid}-${
      crypto.getRandomValues(new Uint32Array(1))[0]!.toString(16)
    }`,
  );
  let file: Deno.FsFile | undefined;
  let written = 0;
  try {
    file = await Deno.open(tmp, { write: true, createNew: true });
    if (data instanceof Uint8Array) {
      await writeAll(file, data);
      written = data.length;
    } else {
      for await (const chunk of data) {
        await writeAll(file, chunk);
        written += chunk.length;
      }
    }
    await file.sync();
    file.close();
    file = undefined;
    await Deno.rename(tmp, path);
  } catch (e) {
    file?.close();
    await Deno.remove(tmp).catch(() => {});
    throw asStorageError(e, `cannot write ${path}`);
  }
  await syncDir(dir);
  return written;
}

/** True when `name` is a leftover temporary file of {@link writeFileAtomic}. */
export function isAtomicTempName(name: string): boolean {
  return name.startsWith(".") && name.includes(".tmp-");
}
