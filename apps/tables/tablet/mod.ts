/**
 * @module
 * One BigTable tablet on one `@strata/lsm` store: column families with
 * per-family GC (max versions, TTL), cells addressed by (row, family,
 * qualifier, timestamp), atomic row mutations, check-and-mutate, reads as
 * of a timestamp, row-range scans, split keys.
 *
 * @example
 * ```ts
 * import { openTablet } from "@strata/tables/tablet";
 *
 * const dir = await Deno.makeTempDir();
 * const enc = new TextEncoder();
 * const tablet = await openTablet(
 *   dir,
 *   { name: "webtable", families: [{ name: "contents", maxVersions: 3 }] },
 *   { start: new Uint8Array(0), end: null },
 * );
 * const { timestamp } = await tablet.mutateRow(enc.encode("com.cnn.www"), [
 *   { op: "put", family: "contents", qualifier: enc.encode("html"), value: enc.encode("<html>") },
 * ]);
 * const row = await tablet.getRow(enc.encode("com.cnn.www"));
 * console.log(row?.cells[0]?.timestamp === timestamp); // true
 * await tablet.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export type {
  Cell,
  Condition,
  FamilySpec,
  KeyRange,
  Mutation,
  OpenTabletOptions,
  ReadOptions,
  Row,
  ScanOptions,
  SharedTablet,
  TableSchema,
  Tablet,
} from "./types.ts";
export { openTablet } from "./tablet.ts";
export { openTabletFrom } from "./split.ts";
export {
  isTabletError,
  TabletError,
  type TabletErrorCode,
} from "./tablet_error.ts";
export { LIMITS } from "./limits.ts";
export { TableSchemaSchema } from "./validate.ts";
export { TabletClock } from "./tablet_clock.ts";
