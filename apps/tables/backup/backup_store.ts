/**
 * Where a backup's files go: a GFS cell (through the public `GfsClient`)
 * or a local directory (the storage root of a `--no-gfs` cell). Paths are
 * absolute within the store (`/backups/NAME/manifest.json`).
 */
import { dirname, join } from "node:path";
import type { GfsClient } from "@strata/gfs";

/** Whole-file writes and reads. */
export interface BackupStore {
  /** Writes a new file. @throws when it exists. */
  write(path: string, bytes: Uint8Array): Promise<void>;
  /** Reads a whole file. */
  read(path: string): Promise<Uint8Array>;
  /** Whether a file exists. */
  exists(path: string): Promise<boolean>;
  /** Where it is, for messages. */
  readonly where: string;
}

/** Files under a local directory. */
export class LocalBackupStore implements BackupStore {
  readonly where: string;
  constructor(readonly root: string) {
    this.where = `local directory ${root}`;
  }
  #path(p: string): string {
    if (p.split("/").includes("..")) throw new Error(`bad path ${p}`);
    return join(this.root, p);
  }
  async write(path: string, bytes: Uint8Array): Promise<void> {
    const file = this.#path(path);
    await Deno.mkdir(dirname(file), { recursive: true });
    // createNew: a backup never overwrites; fsynced before the manifest.
    using f = await Deno.open(file, { write: true, createNew: true });
    for (let off = 0; off < bytes.length;) {
      off += await f.write(bytes.subarray(off));
    }
    await f.sync();
  }
  read(path: string): Promise<Uint8Array> {
    return Deno.readFile(this.#path(path));
  }
  async exists(path: string): Promise<boolean> {
    try {
      await Deno.stat(this.#path(path));
      return true;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return false;
      throw e;
    }
  }
}

/** Files in a GFS cell. */
export class GfsBackupStore implements BackupStore {
  readonly where: string;
  constructor(readonly gfs: GfsClient) {
    this.where = `GFS (${gfs.master})`;
  }
  async write(path: string, bytes: Uint8Array): Promise<void> {
    await this.gfs.upload(path, bytes);
  }
  async read(path: string): Promise<Uint8Array> {
    const d = await this.gfs.download(path);
    return new Uint8Array(await new Response(d.stream).arrayBuffer());
  }
  async exists(path: string): Promise<boolean> {
    return (await this.gfs.ls(path)).some((f) => f.path === path);
  }
}
