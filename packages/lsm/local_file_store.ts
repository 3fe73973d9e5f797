import { basename, dirname, join } from "node:path";
import {
  isAtomicTempName,
  PositionedReader,
  syncDir,
  writeAll,
  writeFileAtomic,
} from "@strata/storage";
import {
  type AppendableFile,
  checkFileName,
  type FileStore,
  type ReadableFile,
  type WrittenFile,
} from "./file_store.ts";

const SLAB_BYTES = 64 * 1024;

/**
 * {@link FileStore} on a local directory: appends with `write`, `sync` is
 * `fdatasync` plus a directory fsync (so a new file's name is durable too),
 * reads are one `pread` each ({@link PositionedReader}), the manifest goes
 * through `writeFileAtomic` (temp file, fsync, rename, fsync directory).
 */
export class LocalFileStore implements FileStore {
  /** The directory holding the files. */
  readonly dir: string;

  /** Where small reads are carved from (see {@link #carve}). */
  #slab = new Uint8Array(0);
  #slabUsed = 0;

  private constructor(dir: string) {
    this.dir = dir;
  }

  /**
   * A fresh buffer of `length` bytes for a read: small ones are views
   * into a shared 64 KiB slab, because allocating (and zeroing) one
   * ArrayBuffer per 4 KiB block read costs more than the read itself.
   * A cached block keeps its slab alive, so memory held can exceed the
   * block cache's charge by up to a slab per cached block in the worst
   * case (blocks of one slab are read, and so evicted, close in time).
   */
  #carve(length: number): Uint8Array {
    if (length > SLAB_BYTES / 4) return new Uint8Array(length);
    if (this.#slabUsed + length > this.#slab.length) {
      this.#slab = new Uint8Array(SLAB_BYTES);
      this.#slabUsed = 0;
    }
    const out = this.#slab.subarray(this.#slabUsed, this.#slabUsed + length);
    this.#slabUsed += length;
    return out;
  }

  /** Opens (creating if needed) the store in `dir`; removes leftover temp files. */
  static async open(dir: string): Promise<LocalFileStore> {
    await Deno.mkdir(dir, { recursive: true });
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && isAtomicTempName(e.name)) {
        await Deno.remove(join(dir, e.name)).catch(() => {});
      }
    }
    return new LocalFileStore(dir);
  }

  async create(name: string): Promise<AppendableFile> {
    checkFileName(name);
    const dir = this.dir;
    const file = await Deno.open(join(dir, name), {
      write: true,
      createNew: true,
    });
    let synced = false;
    return {
      append: (bytes) => writeAll(file, bytes),
      sync: async () => {
        await file.syncData();
        if (!synced) await syncDir(dir);
        synced = true;
      },
      close: () => {
        file.close();
        return Promise.resolve();
      },
    };
  }

  open(name: string): Promise<ReadableFile> {
    checkFileName(name);
    return this.#openPath(join(this.dir, name));
  }

  /**
   * Writes `name` with `write(2)` calls in the caller's turn (into the
   * page cache: readable at once by any handle), opens it for `pread`s;
   * `sync` is `fdatasync` plus a directory fsync, as {@link create}'s.
   */
  writeNow(name: string, bytes: Uint8Array): WrittenFile {
    checkFileName(name);
    const dir = this.dir;
    const path = join(dir, name);
    const out = Deno.openSync(path, { write: true, createNew: true });
    let file: ReadableFile;
    try {
      let off = 0;
      while (off < bytes.length) off += out.writeSync(bytes.subarray(off));
      file = this.#readable(path, bytes.length);
    } catch (e) {
      out.close();
      throw e;
    }
    return {
      file,
      sync: async () => {
        try {
          await out.syncData();
          await syncDir(dir);
        } finally {
          out.close();
        }
      },
    };
  }

  /**
   * Opens `name` in the store of the sibling directory `store`: with
   * this store in `<parent>/<me>/<files>` (as `LsmStore` lays out
   * `<dir>/tables`), that is `<parent>/<store>/<files>/<name>`.
   */
  openSibling(store: string, name: string): Promise<ReadableFile> {
    checkFileName(store);
    checkFileName(name);
    const home = dirname(this.dir);
    return this.#openPath(
      join(dirname(home), store, basename(this.dir), name),
    );
  }

  async #openPath(path: string): Promise<ReadableFile> {
    const { size } = await Deno.stat(path);
    return this.#readable(path, size);
  }

  /** `path` (of `size` bytes) opened for reads, each one `pread`. */
  #readable(path: string, size: number): ReadableFile {
    const reader = PositionedReader.open(path);
    const readSync = (offset: number, length: number) =>
      reader.readAt(offset, length, this.#carve(length));
    return {
      size,
      read: (offset, length) => {
        try {
          return Promise.resolve(readSync(offset, length));
        } catch (e) {
          return Promise.reject(e);
        }
      },
      // The pread blocks the caller either way: a promise adds nothing.
      readSync,
      close: () => reader.close(),
    };
  }

  async list(): Promise<string[]> {
    const names: string[] = [];
    for await (const e of Deno.readDir(this.dir)) {
      if (e.isFile && !isAtomicTempName(e.name)) names.push(e.name);
    }
    return names.sort();
  }

  async delete(name: string): Promise<void> {
    checkFileName(name);
    await Deno.remove(join(this.dir, name)).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
  }

  async writeAtomic(name: string, bytes: Uint8Array): Promise<void> {
    checkFileName(name);
    await writeFileAtomic(join(this.dir, name), bytes);
  }

  async readWhole(name: string): Promise<Uint8Array | undefined> {
    checkFileName(name);
    try {
      return await Deno.readFile(join(this.dir, name));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return undefined;
      throw e;
    }
  }
}
