/**
 * `snapshot_store.ts`: where memory tablets put their snapshots and owner
 * markers: small whole files under a tablet's storage name, in the cell's
 * storage (a local directory every server sees with `--no-gfs`, else GFS).
 * A file appears whole or not at all: local files are written to a
 * temporary name and renamed; a GFS upload is invisible until complete.
 */
import { join } from "node:path";
import type { GfsClient } from "@strata/gfs";

/** Whole-file storage for memory tablets. */
export interface SnapshotStore {
  /** Names of the files under `dir`. */
  list(dir: string): Promise<string[]>;
  /** A file's bytes, or undefined when absent. */
  read(dir: string, name: string): Promise<Uint8Array | undefined>;
  /** Writes a file (replacing one of the same name). */
  write(dir: string, name: string, data: Uint8Array): Promise<void>;
  /** Removes a file (no error when absent). */
  remove(dir: string, name: string): Promise<void>;
}

/** Files under the local directory `root`. */
export function localSnapshotStore(root: string): SnapshotStore {
  return {
    async list(dir) {
      const names: string[] = [];
      try {
        for await (const e of Deno.readDir(join(root, dir))) {
          if (e.isFile && !e.name.endsWith(".tmp")) names.push(e.name);
        }
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
      return names;
    },
    async read(dir, name) {
      try {
        return await Deno.readFile(join(root, dir, name));
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) return undefined;
        throw e;
      }
    },
    async write(dir, name, data) {
      await Deno.mkdir(join(root, dir), { recursive: true });
      const tmp = join(root, dir, `${name}.${crypto.randomUUID()}.tmp`);
      await Deno.writeFile(tmp, data);
      await Deno.rename(tmp, join(root, dir, name));
    },
    async remove(dir, name) {
      try {
        await Deno.remove(join(root, dir, name));
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    },
  };
}

/** Files in GFS under the absolute path `root`. */
export function gfsSnapshotStore(gfs: GfsClient, root: string): SnapshotStore {
  const path = (dir: string, name: string) => `${root}/${dir}/${name}`;
  const gone = (e: unknown) =>
    typeof e === "object" && e !== null &&
    (e as { code?: string }).code === "not_found";
  return {
    async list(dir) {
      const prefix = `${root}/${dir}/`;
      return (await gfs.ls(prefix)).map((f) => f.path.slice(prefix.length))
        .filter((n) => n.length > 0 && !n.includes("/"));
    },
    async read(dir, name) {
      try {
        return await gfs.readAll(path(dir, name));
      } catch (e) {
        if (gone(e)) return undefined;
        throw e;
      }
    },
    async write(dir, name, data) {
      await gfs.remove(path(dir, name)).catch((e) => {
        if (!gone(e)) throw e;
      });
      await gfs.upload(path(dir, name), data);
    },
    async remove(dir, name) {
      await gfs.remove(path(dir, name)).catch((e) => {
        if (!gone(e)) throw e;
      });
    },
  };
}
