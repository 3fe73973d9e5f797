import { GfsError } from "../shared/gfs_error.ts";
import { ancestors, TRASH_DIR } from "../shared/gfs_path.ts";

/** A file as the master records it (durable). */
export interface FileRecord {
  /** Unique, never reused id (survives renames to the trash). */
  id: number;
  /** "pending" uploads are invisible to readers; "complete" files are served. */
  state: "pending" | "complete";
  /** "upload" files are written once; "append" files take record appends. */
  mode: "upload" | "append";
  /** Replication goal of its chunks. */
  replication: number;
  /** Chunk handles in file order. */
  chunks: number[];
  /** Length in bytes (known for completed uploads; appends learn it from replicas). */
  length: number;
  /** Creation time, ms since the epoch (from the operation). */
  createdAt: number;
  /** Last change, ms since the epoch. */
  mtime: number;
}

/**
 * The namespace: a lookup table from full path to file, as in GFS (there
 * are no per-directory records; a directory exists while a file lies
 * beneath it). A path cannot be both a file and a directory.
 */
export class Namespace {
  readonly #files = new Map<string, FileRecord>();
  /** Count of files beneath each directory path, to answer "is a dir" fast. */
  readonly #dirs = new Map<string, number>();

  /** Number of files (pending, complete and trashed). */
  get size(): number {
    return this.#files.size;
  }

  /** The file at `path`, or undefined. */
  get(path: string): FileRecord | undefined {
    return this.#files.get(path);
  }

  /** True when some file lies beneath `path`. */
  isDirectory(path: string): boolean {
    return (this.#dirs.get(path) ?? 0) > 0;
  }

  /**
   * Checks that a file may be created at `path`.
   * @throws GfsError `conflict` when the path exists, is a directory, or
   *   has a file as an ancestor.
   */
  checkCreate(path: string): void {
    if (this.#files.has(path)) {
      throw new GfsError("conflict", `${path} already exists`);
    }
    if (this.isDirectory(path)) {
      throw new GfsError("conflict", `${path} is a directory`);
    }
    for (const a of ancestors(path)) {
      if (this.#files.has(a)) {
        throw new GfsError("conflict", `${a} is a file, not a directory`);
      }
    }
  }

  /** Adds a file. @throws GfsError `conflict` (see {@link checkCreate}). */
  add(path: string, file: FileRecord): void {
    this.checkCreate(path);
    this.#files.set(path, file);
    for (const a of ancestors(path)) {
      this.#dirs.set(a, (this.#dirs.get(a) ?? 0) + 1);
    }
  }

  /** Removes a file. @returns it, or undefined when absent. */
  remove(path: string): FileRecord | undefined {
    const f = this.#files.get(path);
    if (f === undefined) return undefined;
    this.#files.delete(path);
    for (const a of ancestors(path)) {
      const n = (this.#dirs.get(a) ?? 1) - 1;
      if (n <= 0) this.#dirs.delete(a);
      else this.#dirs.set(a, n);
    }
    return f;
  }

  /**
   * Moves a file. @throws GfsError `not_found` or `conflict`.
   */
  rename(from: string, to: string): FileRecord {
    const f = this.#files.get(from);
    if (f === undefined) throw new GfsError("not_found", `${from} not found`);
    this.checkCreate(to);
    this.remove(from);
    this.add(to, f);
    return f;
  }

  /**
   * Paths starting with `prefix`, sorted. Trashed files are listed only
   * when the prefix is inside the trash; pending files only with
   * `includePending`.
   */
  list(
    prefix: string,
    includePending = false,
  ): { path: string; file: FileRecord }[] {
    const inTrash = prefix.startsWith(TRASH_DIR);
    const out: { path: string; file: FileRecord }[] = [];
    for (const [path, file] of this.#files) {
      if (!path.startsWith(prefix)) continue;
      if (!inTrash && path.startsWith(TRASH_DIR + "/")) continue;
      if (!includePending && file.state === "pending") continue;
      out.push({ path, file });
    }
    return out.sort((a, b) => (a.path < b.path ? -1 : 1));
  }

  /** Every (path, file) pair, in insertion order. */
  entries(): IterableIterator<[string, FileRecord]> {
    return this.#files.entries();
  }
}
