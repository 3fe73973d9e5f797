/**
 * Addresses of members that were not in the initial member list, learned
 * from the context of joint membership changes: kept in `dir/members` (a
 * checksummed envelope replaced atomically) because the log entries that
 * carried them may be compacted into a snapshot.
 */
import { openEnvelope, sealEnvelope } from "@strata/codec";
import { writeFileAtomic } from "@strata/storage";
import { join } from "node:path";
import { z } from "zod";
import { ReplicationError } from "./replication_error.ts";

const KIND = "MEMB";
const hostPort = z.string().min(3).max(300);

/** Schema of the addresses of members, by id (also the change context). */
export const memberAddressesSchema = z.record(
  z.string().regex(/^[1-9]\d{0,9}$/),
  z.object({ peer: hostPort, http: hostPort.optional() }),
);
/** Member id (as a string) → addresses. */
export type MemberAddresses = z.infer<typeof memberAddressesSchema>;

/**
 * Reads `dir/members`; a missing file is an empty map.
 * @throws CodecError when the envelope is damaged; ReplicationError
 *   `internal` when it holds something else than addresses.
 */
export async function readMemberAddresses(
  dir: string,
): Promise<MemberAddresses> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(join(dir, "members"));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return {};
    throw e;
  }
  const { payload } = openEnvelope(bytes, KIND, [1]);
  const parsed = memberAddressesSchema.safeParse(
    JSON.parse(new TextDecoder().decode(payload)),
  );
  if (!parsed.success) {
    throw new ReplicationError("internal", "members file holds invalid data");
  }
  return parsed.data;
}

/** Replaces `dir/members` atomically (write, fsync, rename, fsync dir). */
export async function writeMemberAddresses(
  dir: string,
  addresses: MemberAddresses,
): Promise<void> {
  await writeFileAtomic(
    join(dir, "members"),
    sealEnvelope(KIND, 1, new TextEncoder().encode(JSON.stringify(addresses))),
  );
}
