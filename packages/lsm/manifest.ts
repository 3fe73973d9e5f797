import { openEnvelope, sealEnvelope } from "@strata/codec";
import { z } from "zod";
import type { FileStore } from "./file_store.ts";
import { LsmError } from "./lsm_error.ts";

/** Name of the manifest file in the {@link FileStore}. */
export const MANIFEST_NAME = "MANIFEST";
const KIND = "LSMM";
const VERSION = 1;

const ManifestSchema = z.object({
  /**
   * Live SSTables, newest first. One with `store` is a file of that
   * sibling store (shared by a split or merge: see
   * `LsmStore.shareRange`), read only in `[start, end)` (hex).
   */
  tables: z.array(z.object({
    id: z.number().int().nonnegative(),
    name: z.string().regex(/^[0-9]+\.sst$/),
    store: z.string().regex(/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/).max(200)
      .optional(),
    start: z.string().regex(/^([0-9a-f]{2})*$/).optional(),
    end: z.string().regex(/^([0-9a-f]{2})*$/).optional(),
  })),
  /** Every commit log record up to this index is in the tables. */
  logIndex: z.number().int().nonnegative(),
  /** Next table id to hand out. */
  nextId: z.number().int().nonnegative(),
});

/** Which SSTables make up the store and how much of the log they cover. */
export type Manifest = z.infer<typeof ManifestSchema>;

/** One SSTable of a {@link Manifest}. */
export type ManifestTable = Manifest["tables"][number];

/**
 * The sibling stores whose files `manifest` names: a store that no live
 * store's manifest names may be deleted as a whole.
 */
export function namedStores(manifest: Manifest): Set<string> {
  const out = new Set<string>();
  for (const t of manifest.tables) if (t.store !== undefined) out.add(t.store);
  return out;
}

/** Reads the manifest; an empty store's when there is none. */
export async function loadManifest(files: FileStore): Promise<Manifest> {
  const bytes = await files.readWhole(MANIFEST_NAME);
  if (bytes === undefined) return { tables: [], logIndex: 0, nextId: 1 };
  return parseManifest(bytes);
}

/**
 * Decodes a manifest file's bytes (also for a reader outside the store,
 * such as a sweep of stores nobody names).
 *
 * @throws LsmError `corrupt`.
 */
export function parseManifest(bytes: Uint8Array): Manifest {
  try {
    const { payload } = openEnvelope(bytes, KIND, [VERSION]);
    return ManifestSchema.parse(JSON.parse(new TextDecoder().decode(payload)));
  } catch (e) {
    throw new LsmError("corrupt", `${MANIFEST_NAME}: ${String(e)}`, {
      cause: e,
    });
  }
}

/** Replaces the manifest atomically (codec envelope `LSMM`, JSON inside). */
export async function saveManifest(
  files: FileStore,
  manifest: Manifest,
): Promise<void> {
  const payload = new TextEncoder().encode(JSON.stringify(manifest));
  await files.writeAtomic(MANIFEST_NAME, sealEnvelope(KIND, VERSION, payload));
}
