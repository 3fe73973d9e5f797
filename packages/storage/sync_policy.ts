import { z } from "zod";

/**
 * When appended bytes are forced to stable storage (`fdatasync`), and
 * therefore what an acknowledgement promises:
 *
 * - `"always"` (default): every append resolves only after a sync that
 *   covers it. Concurrent appends share one sync (group commit). Survives
 *   `kill -9` and power loss. Costs one sync latency per batch.
 * - `{ batchMs }`: appends resolve once the bytes are written to the OS;
 *   a sync runs at most `batchMs` ms later. Survives `kill -9` (the page
 *   cache outlives the process) but a power loss or kernel crash can lose
 *   up to `batchMs` of acknowledged appends.
 * - `"never"`: no sync except when a segment is sealed and on `close`.
 *   Survives `kill -9`; a power loss can lose any amount of acknowledged
 *   data. For tests and rebuildable data only.
 */
export type SyncPolicy = "always" | "never" | { batchMs: number };

/** zod schema of {@link SyncPolicy}; `batchMs` is 1..60000 ms. */
export const SyncPolicySchema: z.ZodType<SyncPolicy> = z.union([
  z.literal("always"),
  z.literal("never"),
  z.object({ batchMs: z.number().int().min(1).max(60_000) }),
]);
