import type { AppendableFile, FileStore, ReadableFile } from "@strata/lsm";
import { type GfsClient, GfsError, isGfsError } from "@strata/gfs";
import { z } from "zod";
import type { GfsFence } from "./gfs_fence.ts";

const NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/**
 * Table ids an epoch's owner hands out: epoch `e` names its tables from
 * `e × 2^24` (`LsmStoreOptions.firstTableId`), so names never collide
 * across owners and a table's name tells which owner wrote it.
 */
export const TABLE_IDS_PER_EPOCH = 2 ** 24;
const pad = (n: number) => String(n).padStart(10, "0");

function checkName(name: string): void {
  if (!NAME.test(name) || name.length > 200) {
    throw new RangeError(`bad file name ${JSON.stringify(name)}`);
  }
}

interface Version {
  path: string;
  epoch: number;
  seq: number;
}

/**
 * {@link FileStore} in GFS, for the owner of `fence`: table files are
 * `dir/tables/<name>`, written once (appends are buffered and uploaded as
 * one immutable GFS file on `sync`; a GFS file is visible only once
 * complete, so a crash leaves no torn table) and read by range with
 * `GfsClient.pread` (cached chunk locations: one request per block).
 *
 * GFS has no rename, so `writeAtomic(name)` uploads a new version
 * `dir/atomic/<name>/<epoch>-<seq>` and the newest (highest epoch, then
 * sequence) is the file; older versions are deleted after the new one is
 * in place. A fenced owner's late version has a lower epoch than its
 * successor's and never wins: on open the new owner copies the newest
 * version of every atomic file to its own epoch, and `writeAtomic` checks
 * the fence after the upload and throws FencedError rather than report a
 * write that lost (the store then does not delete what it replaced).
 *
 * A late version of a file the successor never wrote (say the first
 * manifest, uploaded by an owner stopped mid-flush) would otherwise be
 * the newest version a third owner finds, naming tables the successor
 * deleted as orphans. So each owner records, once it has adopted, which
 * version of each file it adopted (`dir/adopted/<epoch>`); a version
 * older than a recorded owner's epoch counts only if that record names
 * it or a newer one ({@link validVersion}).
 */
export class GfsFileStore implements FileStore {
  readonly #gfs: GfsClient;
  readonly #dir: string;
  readonly #fence: GfsFence;
  readonly #seq = new Map<string, number>();

  private constructor(gfs: GfsClient, dir: string, fence: GfsFence) {
    this.#gfs = gfs;
    this.#dir = dir;
    this.#fence = fence;
  }

  /**
   * Opens the store in `dir` (absolute GFS path) for the owner of `fence`
   * (claimed before), adopting the newest version of each atomic file.
   */
  static async open(
    gfs: GfsClient,
    dir: string,
    fence: GfsFence,
  ): Promise<GfsFileStore> {
    const store = new GfsFileStore(gfs, dir, fence);
    const records = new AdoptionRecords(gfs, `${dir}/adopted/`);
    await records.load(fence.epoch);
    const adopted: Record<string, [number, number]> = {};
    for (let attempt = 0;; attempt++) {
      const versions = await store.#allVersions();
      try {
        for (const [name, list] of versions) {
          // Skip this owner's own copies (a retried pass already made some).
          const older = list.filter((v) => v.epoch < fence.epoch);
          const v = await store.#newestValid(name, older, records);
          if (v === undefined) continue;
          await store.#put(name, await gfs.readAll(v.path));
          adopted[name] = [v.epoch, v.seq];
        }
        break;
      } catch (e) {
        // Replaced and deleted by a previous owner between the listing and
        // the read (its replacement is then newer): list again.
        if (!isGfsError(e, "not_found") || attempt >= 5) throw e;
      }
    }
    await gfs.upload(
      `${dir}/adopted/${pad(fence.epoch)}`,
      new TextEncoder().encode(JSON.stringify(adopted)),
    );
    return store;
  }

  create(name: string): Promise<AppendableFile> {
    checkName(name);
    const path = this.#path(name);
    const parts: Uint8Array[] = [];
    let state: "open" | "uploaded" | "closed" = "open";
    return Promise.resolve({
      append: (bytes: Uint8Array) => {
        if (state !== "open") {
          return Promise.reject(
            new GfsError("conflict", `${path} is written once; it was synced`),
          );
        }
        parts.push(bytes.slice());
        return Promise.resolve();
      },
      sync: async () => {
        if (state !== "open") return;
        state = "uploaded";
        try {
          await this.#gfs.upload(path, parts.length === 1 ? parts[0]! : parts);
          parts.length = 0;
        } catch (e) {
          // The failed upload was abandoned: a later sync tries again.
          state = "open";
          throw e;
        }
      },
      close: () => {
        state = "closed";
        parts.length = 0;
        return Promise.resolve();
      },
    });
  }

  open(name: string): Promise<ReadableFile> {
    checkName(name);
    return this.#openPath(this.#path(name));
  }

  /**
   * Opens table file `name` of the sibling store `store`: the store in
   * the GFS directory next to this one (`<parent>/<store>/tables/<name>`),
   * read without claiming its fence (a shared table is never written).
   */
  openSibling(store: string, name: string): Promise<ReadableFile> {
    checkName(store);
    checkName(name);
    const parent = this.#dir.slice(0, this.#dir.lastIndexOf("/"));
    return this.#openPath(`${parent}/${store}/tables/${name}`);
  }

  async #openPath(path: string): Promise<ReadableFile> {
    const { length: size } = await this.#gfs.stat(path);
    return {
      size,
      read: (offset, length) => {
        const n = Math.max(0, Math.min(length, size - offset));
        return n === 0
          ? Promise.resolve(new Uint8Array(0))
          : this.#gfs.pread(path, offset, n);
      },
      close: () => {},
    };
  }

  async list(): Promise<string[]> {
    const prefix = `${this.#dir}/tables/`;
    return (await this.#gfs.ls(prefix))
      .map((f) => f.path.slice(prefix.length))
      .filter((n) => NAME.test(n))
      .sort();
  }

  /**
   * Deletes `name`, except a table a newer owner wrote: an owner that was
   * stopped while it opened the store (it deletes the tables its manifest
   * does not name) must not delete what its successor wrote meanwhile.
   */
  async delete(name: string): Promise<void> {
    checkName(name);
    const table = /^(\d+)\.sst$/.exec(name);
    if (
      table !== null &&
      Math.floor(Number(table[1]) / TABLE_IDS_PER_EPOCH) > this.#fence.epoch
    ) return;
    await this.#gfs.remove(this.#path(name)).catch((e) => {
      if (!isGfsError(e, "not_found")) throw e;
    });
  }

  async writeAtomic(name: string, bytes: Uint8Array): Promise<void> {
    checkName(name);
    const mine = await this.#put(name, bytes);
    // Written; but if a newer owner has claimed the store meanwhile, this
    // version loses to its versions: say so instead of reporting success.
    await this.#fence.check();
    for (const v of await this.#versions(name)) {
      if (
        v.epoch < mine.epoch || (v.epoch === mine.epoch && v.seq < mine.seq)
      ) {
        await this.#gfs.remove(v.path).catch((e) => {
          if (!isGfsError(e, "not_found")) throw e;
        });
      }
    }
  }

  async readWhole(name: string): Promise<Uint8Array | undefined> {
    checkName(name);
    for (let attempt = 0;; attempt++) {
      // Since open, this owner holds its own copy of every file it adopted;
      // an older epoch's version of any other file is a fenced owner's late
      // write (open did not adopt it), never the file.
      const newest = (await this.#versions(name))
        .filter((v) => v.epoch >= this.#fence.epoch)
        .at(-1);
      if (newest === undefined) return undefined;
      try {
        return await this.#gfs.readAll(newest.path);
      } catch (e) {
        // Replaced and deleted between the listing and the read: list again.
        if (!isGfsError(e, "not_found") || attempt >= 5) throw e;
      }
    }
  }

  async #put(name: string, bytes: Uint8Array): Promise<Version> {
    const seq = (this.#seq.get(name) ?? 0) + 1;
    this.#seq.set(name, seq);
    const epoch = this.#fence.epoch;
    const path = `${this.#dir}/atomic/${name}/${pad(epoch)}-${pad(seq)}`;
    await this.#gfs.upload(path, bytes);
    return { path, epoch, seq };
  }

  async #versions(name: string): Promise<Version[]> {
    return (await this.#allVersions(name)).get(name) ?? [];
  }

  /** Every version of every atomic file (or of `only`), oldest first. */
  async #allVersions(only?: string): Promise<Map<string, Version[]>> {
    const prefix = `${this.#dir}/atomic/`;
    const out = new Map<string, Version[]>();
    for (const f of await this.#gfs.ls(prefix + (only ? `${only}/` : ""))) {
      const m = /^([^/]+)\/(\d{10})-(\d{10})$/.exec(
        f.path.slice(prefix.length),
      );
      if (m === null || !NAME.test(m[1]!)) continue;
      const list = out.get(m[1]!) ?? [];
      list.push({ path: f.path, epoch: Number(m[2]), seq: Number(m[3]) });
      out.set(m[1]!, list);
    }
    for (const list of out.values()) {
      list.sort((a, b) => a.epoch - b.epoch || a.seq - b.seq);
    }
    return out;
  }

  /** The newest of `list` (oldest first) that {@link validVersion} keeps. */
  async #newestValid(
    name: string,
    list: Version[],
    records: AdoptionRecords,
  ): Promise<Version | undefined> {
    for (let i = list.length - 1; i >= 0; i--) {
      const v = list[i]!;
      if (validVersion(v, name, await records.after(v.epoch))) return v;
    }
    return undefined;
  }

  #path(name: string): string {
    return `${this.#dir}/tables/${name}`;
  }
}

/** `dir/adopted/<epoch>`: the version `[epoch, seq]` adopted per file. */
const AdoptedSchema = z.record(
  z.string(),
  z.tuple([z.number().int(), z.number().int()]),
);
type Adopted = z.infer<typeof AdoptedSchema>;

/**
 * Whether version `v` of file `name` may be adopted, given `record`: what
 * the first owner with a newer epoch than `v`'s that recorded its adoption
 * adopted. No such record: nothing has fenced `v`'s owner. A record that
 * names an older version, or none, of the file: `v` was written after that
 * owner looked, by an owner it had already fenced.
 */
export function validVersion(
  v: { epoch: number; seq: number },
  name: string,
  record: Adopted | undefined,
): boolean {
  if (record === undefined) return true;
  const a = Object.hasOwn(record, name) ? record[name] : undefined;
  if (a === undefined) return false;
  return v.epoch < a[0] || (v.epoch === a[0] && v.seq <= a[1]);
}

/** The adoption records of a store's owners (`dir/adopted/<epoch>`). */
class AdoptionRecords {
  readonly #gfs: GfsClient;
  readonly #prefix: string;
  #epochs: number[] = [];
  readonly #read = new Map<number, Adopted>();

  constructor(gfs: GfsClient, prefix: string) {
    this.#gfs = gfs;
    this.#prefix = prefix;
  }

  /** Lists the records of owners older than `epoch`. */
  async load(epoch: number): Promise<void> {
    this.#epochs = (await this.#gfs.ls(this.#prefix))
      .map((f) => Number(f.path.slice(this.#prefix.length)))
      .filter((e) => Number.isSafeInteger(e) && e < epoch)
      .sort((a, b) => a - b);
  }

  /** The record of the first owner after `epoch` that wrote one. */
  async after(epoch: number): Promise<Adopted | undefined> {
    const e = this.#epochs.find((x) => x > epoch);
    if (e === undefined) return undefined;
    let record = this.#read.get(e);
    if (record === undefined) {
      const bytes = await this.#gfs.readAll(`${this.#prefix}${pad(e)}`);
      record = AdoptedSchema.parse(JSON.parse(new TextDecoder().decode(bytes)));
      this.#read.set(e, record);
    }
    return record;
  }
}
