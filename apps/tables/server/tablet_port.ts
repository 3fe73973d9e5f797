/**
 * What the tablet server needs of a tablet (the data model lives in
 * `../tablet/`): the port the server is written against, so the HTTP and
 * fencing logic is independent of how a tablet stores its rows.
 */
import type { CellBytes, TableSchemaJson } from "../shared/wire.ts";

/** One change to a row. */
export type PortMutation =
  | {
    op: "put";
    family: string;
    qualifier: Uint8Array;
    value: Uint8Array;
    timestamp?: number;
  }
  | {
    op: "deleteCells";
    family: string;
    qualifier: Uint8Array;
    timestamp?: number;
  }
  | { op: "deleteFamily"; family: string }
  | { op: "deleteRow" };

/** Which cells a read returns. */
export interface PortReadOptions {
  /** `family` or `family:qualifier` (qualifier bytes) entries; none = all. */
  columns?: { family: string; qualifier?: Uint8Array }[];
  /** Newest versions per cell (default 1). */
  versions?: number;
  /** Only cells with timestamp ≤ asOf. */
  asOf?: number;
}

/** A scan of rows in `[start, end)` with `prefix`, at most `limit` rows. */
export interface PortScanOptions extends PortReadOptions {
  start?: Uint8Array;
  end?: Uint8Array;
  prefix?: Uint8Array;
  limit?: number;
}

/** A row read back. */
export interface PortRow {
  key: Uint8Array;
  cells: CellBytes[];
}

/** A tablet as the server uses it. */
export interface TabletPort {
  /** Applies `mutations` to row `key` atomically; durable when it resolves. */
  mutateRow(key: Uint8Array, mutations: PortMutation[]): Promise<void>;
  /** Applies `mutations` only when the condition holds. @returns whether it did. */
  checkAndMutate(
    key: Uint8Array,
    condition: { family: string; qualifier: Uint8Array; equals: Uint8Array | null },
    mutations: PortMutation[],
  ): Promise<boolean>;
  /** The row, or undefined when it has no cells. */
  getRow(key: Uint8Array, options: PortReadOptions): Promise<PortRow | undefined>;
  /** Rows in key order. */
  scan(options: PortScanOptions): AsyncIterable<PortRow>;
  /** Bytes the tablet takes, roughly. */
  approximateBytes(): number;
  /** Closes the tablet (flushing what must be). */
  close(): Promise<void>;
}

/** The range a tablet serves: `[start, end)`, end null = +∞. */
export interface PortRange {
  start: Uint8Array;
  end: Uint8Array | null;
}

/** Opens (or creates) the tablet stored under `dir`. */
export type TabletOpener = (
  dir: string,
  schema: TableSchemaJson,
  range: PortRange,
) => Promise<TabletPort>;
