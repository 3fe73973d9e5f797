/**
 * The settings a GFS cell fixes at birth, kept beside each master's and
 * chunkserver's data (`dir/cell`, a checksummed envelope). The chunk size
 * is one: chunk i of a file starts at byte i × chunk size, so a process
 * restarted on the same data with another size would read every existing
 * file at the wrong offsets. The first start records the size; later
 * starts use it, and a flag that disagrees is refused with a clear error.
 */
import { openEnvelope, sealEnvelope } from "@strata/codec";
import { writeFileAtomic } from "@strata/storage";
import { join } from "node:path";
import { z } from "zod";
import { GfsError } from "./gfs_error.ts";

/** Chunk size of a cell nobody chose one for (the GFS paper's 64 MiB). */
export const DEFAULT_CHUNK_BYTES = 64 * 2 ** 20;
/** Name of the file in a data directory. */
export const CELL_FILE = "cell";

const KIND = "CELL";
const CellSchema = z.object({
  chunkBytes: z.number().int().min(64 * 1024).max(1024 * 2 ** 20),
});

function mib(bytes: number): string {
  return bytes % 2 ** 20 === 0 ? `${bytes / 2 ** 20}MiB` : `${bytes}B`;
}

function checked(chunkBytes: number): number {
  const r = CellSchema.safeParse({ chunkBytes });
  if (!r.success) {
    throw new GfsError(
      "bad_request",
      `the masters report a chunk size of ${chunkBytes} bytes, outside 64 KiB..1 GiB`,
    );
  }
  return r.data.chunkBytes;
}

/**
 * The chunk size to run with in `dir`: the recorded one if the directory
 * has one, else `requested`, else what `fromCell` says (a new chunkserver
 * asks its masters), else {@link DEFAULT_CHUNK_BYTES}; recorded now.
 * @throws GfsError `conflict` when `requested` differs from the recorded
 *   size; `bad_request` when the file is damaged or holds a bad size;
 *   whatever `fromCell` throws.
 */
export async function settleChunkBytes(
  dir: string,
  requested: number | undefined,
  fromCell?: () => Promise<number>,
): Promise<number> {
  const path = join(dir, CELL_FILE);
  let bytes: Uint8Array | undefined;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (bytes === undefined) {
    const chunkBytes = requested ??
      (fromCell ? checked(await fromCell()) : DEFAULT_CHUNK_BYTES);
    await writeFileAtomic(
      path,
      sealEnvelope(
        KIND,
        1,
        new TextEncoder().encode(JSON.stringify({ chunkBytes })),
      ),
    );
    return chunkBytes;
  }
  let stored: number;
  try {
    const { payload } = openEnvelope(bytes, KIND, [1]);
    stored = CellSchema.parse(JSON.parse(new TextDecoder().decode(payload)))
      .chunkBytes;
  } catch (e) {
    throw new GfsError(
      "bad_request",
      `${path} is damaged (${
        e instanceof Error ? e.message : e
      }); it records the cell's chunk size`,
    );
  }
  if (requested !== undefined && requested !== stored) {
    throw new GfsError(
      "conflict",
      `the data in ${dir} belongs to a cell with ${mib(stored)} chunks; ` +
        `--chunk-bytes ${mib(requested)} would misread its files. ` +
        `Leave out --chunk-bytes, or use another --data-dir`,
    );
  }
  return stored;
}
