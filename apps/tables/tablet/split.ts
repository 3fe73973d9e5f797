import { LsmStore } from "@strata/lsm";
import { CLOCK_KEY } from "./key_codec.ts";
import { LsmTablet, openTablet } from "./tablet.ts";
import { TabletError } from "./tablet_error.ts";
import type { KeyRange, OpenTabletOptions, Tablet } from "./types.ts";
import { encodeMarker } from "./value_codec.ts";

/** Bytes per write batch while copying (well under a commit-log record's 16 MiB). */
const COPY_BATCH_BYTES = 1 << 20;

/**
 * Creates a new tablet in `dir` serving `range`, holding the rows of
 * `range` from `sources` (tablets of the same table): one source and half
 * its range for each child of a split, two adjacent sources and their
 * union for a merge. The data is copied, not shared: entries a major
 * compaction would drop are left behind, everything else (cells with
 * their timestamps, deleted versions holding their slots) is written
 * through a fresh store and flushed into its SSTables. Its clock starts
 * above every source's, so later timestamps stay above copied ones.
 *
 * The caller stops writes to the sources first (a tablet server answers
 * `not_serving` for them meanwhile) and retires them afterwards; the
 * sources are not changed. `dir` must not hold a tablet yet.
 *
 * @throws TabletError `bad_request` for a source of another table or
 *   type, or a non-empty `dir`.
 */
export async function openTabletFrom(
  dir: string,
  range: KeyRange,
  sources: Tablet[],
  options: OpenTabletOptions = {},
): Promise<Tablet> {
  if (sources.length === 0) {
    throw new TabletError("bad_request", "no source tablets");
  }
  const schema = sources[0]!.schema;
  const lsmSources = sources.map((s) => {
    if (!(s instanceof LsmTablet) || s.schema.name !== schema.name) {
      throw new TabletError(
        "bad_request",
        "source tablets must be open tablets of one table",
      );
    }
    return s;
  });
  // Writing through a plain store (no filter, no per-batch sync); the
  // flush at the end makes the copy durable in one SSTable sync.
  const store = await LsmStore.open(dir, { ...options.lsm, sync: "never" });
  try {
    if (store.stats().tables > 0 || store.stats().memtableBytes > 0) {
      throw new TabletError("bad_request", `${dir} already holds a tablet`);
    }
    let batch: { key: Uint8Array; value: Uint8Array }[] = [];
    let bytes = 0;
    for (const s of lsmSources) {
      for await (const e of s.liveEntries(range)) {
        batch.push(e);
        bytes += e.key.length + e.value.length;
        if (bytes >= COPY_BATCH_BYTES) {
          await store.write(batch);
          batch = [];
          bytes = 0;
        }
      }
    }
    const clock = Math.max(...lsmSources.map((s) => s.lastTimestamp));
    batch.push({ key: CLOCK_KEY, value: encodeMarker(clock) });
    await store.write(batch);
    await store.flush();
  } finally {
    await store.close();
  }
  return await openTablet(dir, schema, range, options);
}
