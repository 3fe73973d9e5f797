// Message shapes shared by this package's tests and the codec benchmark:
// the messages strata actually sends (Raft heartbeats, AppendEntries, a
// search top-10), so what is measured is what runs.
import { z } from "zod";
import { defineMessage } from "./message.ts";

/** A Raft heartbeat (AppendEntries without entries). */
export const Heartbeat = defineMessage(
  "Heartbeat",
  z.object({
    term: z.number().int().nonnegative(),
    from: z.number().int().nonnegative(),
    to: z.number().int().nonnegative(),
    commit: z.number().int().nonnegative(),
  }),
);

const Entry = z.object({
  term: z.number().int().nonnegative(),
  index: z.number().int().nonnegative(),
  data: z.instanceof(Uint8Array),
});

/** A Raft AppendEntries with its entries. */
export const AppendEntries = defineMessage(
  "AppendEntries",
  z.object({
    term: z.number().int().nonnegative(),
    from: z.number().int().nonnegative(),
    to: z.number().int().nonnegative(),
    prevIndex: z.number().int().nonnegative(),
    prevTerm: z.number().int().nonnegative(),
    commit: z.number().int().nonnegative(),
    entries: z.array(Entry),
  }),
);

/** A search shard's top-n answer. */
export const SearchTopN = defineMessage(
  "SearchTopN",
  z.object({
    shard: z.number().int().nonnegative(),
    took: z.number().nonnegative(),
    total: z.number().int().nonnegative(),
    hits: z.array(z.object({
      id: z.string(),
      score: z.number(),
      snippet: z.string().optional(),
    })),
  }),
);
