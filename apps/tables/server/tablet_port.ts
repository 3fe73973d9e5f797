/**
 * What the tablet server needs of a tablet: the tablet's own interface
 * (`../tablet/types.ts`), and a way to open one by its storage name, so
 * the server's HTTP and fencing logic does not know where tablets are
 * stored (a shared directory, or GFS).
 */
import type {
  KeyRange,
  SharedTablet,
  TableSchema,
  Tablet,
} from "../tablet/types.ts";

export type {
  Mutation as PortMutation,
  ReadOptions as PortReadOptions,
  Row as PortRow,
  ScanOptions as PortScanOptions,
} from "../tablet/types.ts";

/** A tablet as the server uses it. */
export type TabletPort = Tablet;
/** The range a tablet serves: `[start, end)`, end null = +∞. */
export type PortRange = KeyRange;

/**
 * Opens (or creates) the tablet stored under the name `dir`. With
 * `bulkLoad` its commit log is not synced per write: the loader flushes
 * the tablet (SSTables) before it counts the data as stored. A new
 * tablet with `shared` starts from those references to its siblings'
 * SSTables (a split's or merge's sources, in the same folder).
 */
export type TabletOpener = (
  dir: string,
  schema: TableSchema,
  range: PortRange,
  options?: { bulkLoad?: boolean; shared?: SharedTablet[] },
) => Promise<TabletPort>;
