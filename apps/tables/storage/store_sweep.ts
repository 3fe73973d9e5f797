/**
 * Garbage collection of tablet stores after splits and merges. A split's
 * halves (a merge's result) start as references to their sources'
 * SSTables (`LsmStore.shareRange`): the retired source's store must stay
 * while any live tablet's manifest names it, and goes once none does (the
 * halves drop their references as they compact).
 *
 * Why this is safe with splits running at the same time: references are
 * only ever copied from a live tablet's manifest into a new one, and a
 * manifest only loses references (compaction) or gains its own files
 * (flush). The live set is read first, then every live manifest: a store
 * a tablet created meanwhile names is named by its (then live) source
 * too, which was read after it was copied or still named it then.
 */
import { type GfsClient, isGfsError } from "@strata/gfs";
import { MANIFEST_NAME, namedStores, parseManifest } from "@strata/lsm";

/** The stores of the tablets of one storage root, as the sweep sees them. */
export interface StoreFolder {
  /**
   * The stores (`<table>/<tablet id>` paths) the manifest of `store` names
   * (every version that may be its current one, so never too few); none
   * when it has no manifest.
   */
  namedBy(store: string): Promise<Set<string>>;
  /** Deletes every file of `store` (no error when already gone). */
  remove(store: string): Promise<void>;
}

/**
 * Deletes each store of `retired` that is not live and that no live
 * store's manifest names. `live` must be read (from the tablet map)
 * before this runs. A crash part way leaves stores nobody names, removed
 * by the next sweep.
 * @returns the stores deleted.
 */
export async function sweepRetired(
  folder: StoreFolder,
  live: readonly string[],
  retired: readonly string[],
): Promise<string[]> {
  const keep = new Set(live);
  for (const s of live) {
    for (const named of await folder.namedBy(s)) keep.add(named);
  }
  const removed: string[] = [];
  for (const s of retired) {
    if (keep.has(s)) continue;
    await folder.remove(s);
    removed.push(s);
  }
  return removed;
}

/**
 * The names a manifest gives its shared tables' stores are siblings
 * (`<tablet id>`): as store paths they are in `store`'s own folder.
 */
export function siblingPaths(store: string, names: Set<string>): Set<string> {
  const folder = store.slice(0, store.lastIndexOf("/") + 1);
  return new Set([...names].map((n) => folder + n));
}

/** The {@link StoreFolder} of tablets stored in GFS under `root`. */
export function gfsStoreFolder(gfs: GfsClient, root: string): StoreFolder {
  return {
    async namedBy(store) {
      // GfsFileStore keeps versions of the manifest by owner epoch: a
      // fenced owner's late version may be there too; all count.
      const prefix = `${root}/${store}/atomic/${MANIFEST_NAME}/`;
      for (let attempt = 0;; attempt++) {
        const out = new Set<string>();
        try {
          for (const f of await gfs.ls(prefix)) {
            const bytes = await gfs.readAll(f.path);
            for (const n of namedStores(parseManifest(bytes))) out.add(n);
          }
          return siblingPaths(store, out);
        } catch (e) {
          // Replaced (and deleted) between the listing and the read: its
          // successor was not listed, so list again.
          if (!isGfsError(e, "not_found") || attempt >= 5) throw e;
        }
      }
    },
    async remove(store) {
      for (const f of await gfs.ls(`${root}/${store}/`)) {
        await gfs.remove(f.path).catch((e) => {
          if (!isGfsError(e, "not_found")) throw e;
        });
      }
    },
  };
}
