import { openTablet } from "./tablet.ts";
import { TabletError } from "./tablet_error.ts";
import type { KeyRange, OpenTabletOptions, Tablet } from "./types.ts";

/**
 * Creates a new tablet in `dir` serving `range` from the rows of `range`
 * in `sources` (tablets of one table; see {@link Tablet.copyTo}): one
 * source and half its range for each child of a split, two adjacent
 * sources and their union for a merge. The copy is written without a
 * sync per batch and flushed into SSTables at the end, then the tablet is
 * reopened with `options`.
 *
 * The caller stops writes to the sources first (a tablet server answers
 * `not_serving` for them meanwhile) and retires them afterwards; the
 * sources are not changed.
 *
 * @throws TabletError `bad_request` for no sources, sources of another
 *   table, or a `dir` that already holds data.
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
  const target = await openTablet(dir, schema, range, {
    ...options,
    lsm: { ...options.lsm, sync: "never" },
  });
  try {
    if (target.approximateBytes() > 0) {
      throw new TabletError("bad_request", `${dir} already holds a tablet`);
    }
    for (const s of sources) await s.copyTo(target, range);
    await target.flush();
  } finally {
    await target.close();
  }
  return await openTablet(dir, schema, range, options);
}
