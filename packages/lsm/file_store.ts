/**
 * The port through which the LSM engine's table files and manifest enter
 * and leave storage. Table files are written once, append-only, then only
 * read by range; the manifest is replaced atomically. A local-disk
 * implementation exists ({@link LocalFileStore}); the plan is a GFS-backed
 * one, which is why nothing here needs in-place writes.
 */
export interface FileStore {
  /** Creates `name` (it must not exist) for appending. */
  create(name: string): Promise<AppendableFile>;
  /** Opens the immutable file `name` for range reads. */
  open(name: string): Promise<ReadableFile>;
  /** Names of the files present (no temporaries). */
  list(): Promise<string[]>;
  /** Deletes `name`; no error when it is already gone. */
  delete(name: string): Promise<void>;
  /** Replaces `name` with `bytes` atomically (old or new after a crash, never a mix). */
  writeAtomic(name: string, bytes: Uint8Array): Promise<void>;
  /** Reads the whole of `name`, or undefined when it does not exist. */
  readWhole(name: string): Promise<Uint8Array | undefined>;
  /**
   * Opens table file `name` of the sibling store `store` (one whose
   * directory is next to this store's, e.g. the tablet a split came
   * from) for range reads; never writes or deletes it. Stores without
   * siblings leave it out, and then cannot open shared tables.
   */
  openSibling?(store: string, name: string): Promise<ReadableFile>;
  /**
   * Creates `name` (it must not exist) holding `bytes`, in the caller's
   * turn, and opens it for range reads with `readSync`: the bytes are
   * readable at once, durable (the name too) once the returned file's
   * `sync` resolves. For stores whose writes need not wait (a local disk: a
   * `write` into the page cache); the engine then installs a flushed
   * table in the turn that froze its memtable, as a background flush
   * thread would, not when the event loop next turns. Optional; stores
   * that must wait (GFS) leave it out.
   */
  writeNow?(name: string, bytes: Uint8Array): WrittenFile;
}

/** A file {@link FileStore.writeNow} wrote: readable now, durable later. */
export interface WrittenFile {
  /** The file opened for reads (it has `readSync`). */
  readonly file: ReadableFile;
  /**
   * Makes the bytes and the file's name durable (after that, a manifest
   * may name the file) and releases the write handle. Call it once, also
   * when the file is given up.
   */
  sync(): Promise<void>;
}

/** A file being written: appends, then a sync that makes them durable. */
export interface AppendableFile {
  /** Appends bytes at the end. */
  append(bytes: Uint8Array): Promise<void>;
  /** Makes every append so far durable (and the file's name visible). */
  sync(): Promise<void>;
  /** Closes the handle. */
  close(): Promise<void>;
}

/** An immutable file opened for positioned reads. */
export interface ReadableFile {
  /** Size in bytes. */
  readonly size: number;
  /** Reads `length` bytes at `offset` (fewer only at the end of the file). */
  read(offset: number, length: number): Promise<Uint8Array>;
  /**
   * {@link read} without a promise, for files whose bytes are at hand
   * without waiting (a local file: one `pread`): the engine then reads
   * blocks in the caller's turn, so a read that misses the block cache
   * costs no promise chain. Optional; stores that must wait (GFS) leave
   * it out.
   */
  readSync?(offset: number, length: number): Uint8Array;
  /** Releases the handle. Idempotent. */
  close(): void;
}

/** File names the port accepts: one path component, no temporaries. */
export function checkFileName(name: string): void {
  if (!/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(name) || name.length > 200) {
    throw new RangeError(`bad file name ${JSON.stringify(name)}`);
  }
}
