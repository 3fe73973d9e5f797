import { openEnvelope, sealEnvelope } from "@strata/codec";
import type { HardState } from "@strata/raft";
import { writeFileAtomic } from "@strata/storage";
import { join } from "node:path";
import { z } from "zod";
import { ReplicationError } from "./replication_error.ts";

const KIND = "HARD";
const HardStateSchema = z.object({
  term: z.number().int().nonnegative(),
  vote: z.number().int().nonnegative(),
  commit: z.number().int().nonnegative(),
});

/** The bytes of the hardstate file: term, vote and commit in a checksummed envelope. */
export function encodeHardState(hs: HardState): Uint8Array {
  return sealEnvelope(KIND, 1, new TextEncoder().encode(JSON.stringify(hs)));
}

/**
 * Reads the bytes of a hardstate file.
 * @throws CodecError when the envelope is damaged (torn, bit flipped);
 *   ReplicationError `internal` when it holds invalid numbers.
 */
export function decodeHardState(bytes: Uint8Array): HardState {
  const { payload } = openEnvelope(bytes, KIND, [1]);
  const parsed = HardStateSchema.safeParse(
    JSON.parse(new TextDecoder().decode(payload)),
  );
  if (!parsed.success) {
    throw new ReplicationError(
      "internal",
      "hardstate file holds invalid numbers",
    );
  }
  return parsed.data;
}

/**
 * Reads `dir/hardstate` (term, vote, commit in a checksummed envelope);
 * a missing file is the zero state of a new node.
 * @throws CodecError when the envelope is damaged; ReplicationError
 *   `internal` when it holds invalid numbers.
 */
export async function readHardState(dir: string): Promise<HardState> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(join(dir, "hardstate"));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      return { term: 0, vote: 0, commit: 0 };
    }
    throw e;
  }
  return decodeHardState(bytes);
}

/** Replaces `dir/hardstate` atomically (write, fsync, rename, fsync dir). */
export async function writeHardState(
  dir: string,
  hs: HardState,
): Promise<void> {
  await writeFileAtomic(join(dir, "hardstate"), encodeHardState(hs));
}
