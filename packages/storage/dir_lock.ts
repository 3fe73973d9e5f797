import { join } from "node:path";
import { asStorageError, StorageError } from "./storage_error.ts";

/** Name of the lock file inside a data directory. */
export const LOCK_FILE = "LOCK";

/**
 * Ownership of a data directory by one process: the file `LOCK` held open
 * with an exclusive advisory lock (`flock`), with the owner's pid written
 * inside so a refused opener can say who holds it. The kernel drops the
 * lock when the process dies, even by `kill -9`, so no stale-lock cleanup
 * is needed.
 *
 * `flock` locks belong to an open file description: two acquisitions in
 * one process conflict too, which is what stops two objects in one process
 * from sharing a directory.
 */
export class DirLock {
  #file: Deno.FsFile | null;
  /** The locked directory. */
  readonly dir: string;

  private constructor(dir: string, file: Deno.FsFile) {
    this.dir = dir;
    this.#file = file;
  }

  /**
   * Takes the directory's lock without waiting, creating the directory if
   * needed.
   *
   * @throws StorageError `locked` (naming the holder's pid) when another
   *   owner holds it; `io` when the directory cannot be used.
   */
  static async acquire(dir: string): Promise<DirLock> {
    let file: Deno.FsFile;
    try {
      await Deno.mkdir(dir, { recursive: true });
      file = await Deno.open(join(dir, LOCK_FILE), {
        read: true,
        write: true,
        create: true,
      });
    } catch (e) {
      throw asStorageError(e, `cannot open the lock file in ${dir}`);
    }
    let locked = false;
    try {
      locked = await file.tryLock(true);
    } catch (e) {
      file.close();
      throw asStorageError(e, `cannot lock ${dir}`);
    }
    if (!locked) {
      file.close();
      const holder = await readHolder(join(dir, LOCK_FILE));
      throw new StorageError(
        "locked",
        `data directory ${dir} is locked by ${
          holder === null ? "another owner" : `process ${holder}`
        }${holder === Deno.pid ? " (this process)" : ""}`,
      );
    }
    try {
      await file.truncate(0);
      await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
      await file.syncData();
    } catch (e) {
      file.close();
      throw asStorageError(e, `cannot record the lock holder in ${dir}`);
    }
    return new DirLock(dir, file);
  }

  /** True until {@link release}. */
  get held(): boolean {
    return this.#file !== null;
  }

  /** Gives the directory up. Idempotent. */
  release(): void {
    const file = this.#file;
    if (file === null) return;
    this.#file = null;
    try {
      file.unlockSync();
    } finally {
      file.close();
    }
  }
}

async function readHolder(path: string): Promise<number | null> {
  try {
    const text = (await Deno.readTextFile(path)).trim();
    const pid = Number(text);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}
