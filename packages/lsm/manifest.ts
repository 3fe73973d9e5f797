import { openEnvelope, sealEnvelope } from "@strata/codec";
import { z } from "zod";
import type { FileStore } from "./file_store.ts";
import { LsmError } from "./lsm_error.ts";

/** Name of the manifest file in the {@link FileStore}. */
export const MANIFEST_NAME = "MANIFEST";
const KIND = "LSMM";
const VERSION = 1;

const ManifestSchema = z.object({
  /** Live SSTables, newest first. */
  tables: z.array(z.object({
    id: z.number().int().nonnegative(),
    name: z.string().regex(/^[0-9]+\.sst$/),
  })),
  /** Every commit log record up to this index is in the tables. */
  logIndex: z.number().int().nonnegative(),
  /** Next table id to hand out. */
  nextId: z.number().int().nonnegative(),
});

/** Which SSTables make up the store and how much of the log they cover. */
export type Manifest = z.infer<typeof ManifestSchema>;

/** Reads the manifest; an empty store's when there is none. */
export async function loadManifest(files: FileStore): Promise<Manifest> {
  const bytes = await files.readWhole(MANIFEST_NAME);
  if (bytes === undefined) return { tables: [], logIndex: 0, nextId: 1 };
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
