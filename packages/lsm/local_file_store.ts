import { join } from "node:path";
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
} from "./file_store.ts";

/**
 * {@link FileStore} on a local directory: appends with `write`, `sync` is
 * `fdatasync` plus a directory fsync (so a new file's name is durable too),
 * reads are one `pread` each ({@link PositionedReader}), the manifest goes
 * through `writeFileAtomic` (temp file, fsync, rename, fsync directory).
 */
export class LocalFileStore implements FileStore {
  /** The directory holding the files. */
  readonly dir: string;

  private constructor(dir: string) {
    this.dir = dir;
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

  async open(name: string): Promise<ReadableFile> {
    checkFileName(name);
    const path = join(this.dir, name);
    const { size } = await Deno.stat(path);
    const reader = PositionedReader.open(path);
    return {
      size,
      read: (offset, length) => {
        try {
          return Promise.resolve(reader.readAt(offset, length));
        } catch (e) {
          return Promise.reject(e);
        }
      },
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
