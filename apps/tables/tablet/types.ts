/**
 * The BigTable data model of one tablet: the types the tablet server, the
 * master and the client share. A table has column families; a cell is
 * addressed by (row key bytes, family:qualifier, timestamp in ms); rows are
 * sorted by key bytes; one row's mutations apply atomically.
 */
import type { LsmStoreOptions, SharedTable } from "@strata/lsm";

/**
 * A column family and its garbage-collection policy. Versions beyond
 * `maxVersions` and cells older than `ttlMs` are hidden from every read at
 * once and dropped physically by the next compaction.
 */
export interface FamilySpec {
  /** `[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}` (the HBase/Bigtable family charset). */
  name: string;
  /**
   * Versions kept per column, newest timestamps first (default 1, as
   * HBase; a deleted version keeps its slot until newer versions push it
   * out, so deleting the newest version never resurrects an older one).
   */
  maxVersions?: number;
  /** Cells whose timestamp is `ttlMs` or more before now are expired (default: never). */
  ttlMs?: number;
}

/** A table: its name and column families. */
export interface TableSchema {
  /** `[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}`. */
  name: string;
  /** At least one family, names unique. */
  families: FamilySpec[];
}

/**
 * One change to a row; a row mutation is a list of these applied in order,
 * atomically, all with one write timestamp `T` (returned by
 * {@link Tablet.mutateRow}).
 */
export type Mutation =
  /** Sets a cell; `timestamp` defaults to `T`. Same cell, same timestamp: the later write wins. */
  | {
    op: "put";
    family: string;
    qualifier: Uint8Array;
    value: Uint8Array;
    timestamp?: number;
  }
  /**
   * With `timestamp`: deletes exactly that version. Without: deletes every
   * version of the column with timestamp `<= T` written before this mutation.
   */
  | {
    op: "deleteCells";
    family: string;
    qualifier: Uint8Array;
    timestamp?: number;
  }
  /** Deletes every cell of the family with timestamp `<= T` written before this mutation. */
  | { op: "deleteFamily"; family: string }
  /** Deletes every cell of the row with timestamp `<= T` written before this mutation. */
  | { op: "deleteRow" };

/** One version of one column. */
export interface Cell {
  family: string;
  qualifier: Uint8Array;
  /** Milliseconds (the tablet's clock, or the writer's explicit timestamp). */
  timestamp: number;
  value: Uint8Array;
}

/** A row as read: its key and visible cells, sorted by family, qualifier, timestamp descending. */
export interface Row {
  key: Uint8Array;
  cells: Cell[];
}

/** What a read returns of each row. */
export interface ReadOptions {
  /** Only these columns (a whole family when `qualifier` is absent); default all. */
  columns?: { family: string; qualifier?: Uint8Array }[];
  /** At most this many versions per column, newest first (default: all the family keeps). */
  versions?: number;
  /** Only cells with timestamp `<= asOf` (the newest such versions). */
  asOf?: number;
}

/**
 * A range of rows: `[start, end)` intersected with the rows starting with
 * `prefix` and the tablet's range; at most `limit` rows (rows with no
 * visible cell are skipped and not counted).
 */
export interface ScanOptions extends ReadOptions {
  start?: Uint8Array;
  end?: Uint8Array;
  prefix?: Uint8Array;
  limit?: number;
  /**
   * With `asOf`: the rows as they were at `asOf` (a snapshot): entries
   * written after it are ignored, so later deletes, overwrites past
   * `maxVersions` and TTL expiry (measured at `asOf`) hide nothing.
   * Refused (`compacted`) when a GC compaction since `asOf` may have
   * dropped cells it needs; GC is held while it runs. See
   * {@link Tablet.holdSnapshot}.
   */
  consistent?: boolean;
}

/** The test of {@link Tablet.checkAndMutate}: the newest visible version of one cell. */
export interface Condition {
  family: string;
  qualifier: Uint8Array;
  /** The value the cell must have; `null` = the cell must be absent. */
  equals: Uint8Array | null;
}

/** Rows `[start, end)`; `start` empty = from the first row, `end` null = to the last. */
export interface KeyRange {
  start: Uint8Array;
  end: Uint8Array | null;
}

/**
 * One tablet: the rows of a table in a key range, stored in one LSM store.
 * Every method that takes a row refuses one outside {@link range}
 * (`TabletError("out_of_range")`); bad input is `TabletError("bad_request")`
 * or `("too_large")`.
 */
export interface Tablet {
  /** The rows this tablet serves. */
  readonly range: KeyRange;
  /** The table's schema. */
  readonly schema: TableSchema;
  /**
   * Applies `mutations` in order, atomically (one commit-log record);
   * resolves once durable. Serialized with other writes to the same row.
   * @returns the write timestamp `T` (ms, strictly increasing per tablet).
   */
  mutateRow(
    row: Uint8Array,
    mutations: Mutation[],
  ): Promise<{ timestamp: number }>;
  /**
   * Reads the condition cell and applies `onMatch` or `onMismatch`,
   * atomically with respect to every other write to the row.
   * `timestamp` is the write timestamp, or the read time when nothing was written.
   */
  checkAndMutate(
    row: Uint8Array,
    condition: Condition,
    onMatch: Mutation[],
    onMismatch?: Mutation[],
  ): Promise<{ matched: boolean; timestamp: number }>;
  /** The row's visible cells, or undefined when it has none. */
  getRow(row: Uint8Array, options?: ReadOptions): Promise<Row | undefined>;
  /** Rows in key order (see {@link ScanOptions}). */
  scan(options?: ScanOptions): AsyncGenerator<Row>;
  /**
   * Keeps what a consistent scan as of `asOf` needs for `ms`: compactions
   * meanwhile drop nothing. Resolves once every write with a timestamp
   * `<= asOf` is applied and later writes get timestamps above it (waits
   * up to a few seconds when `asOf` is just ahead of the clock).
   * @throws TabletError `compacted` when a GC compaction (or the tablet's
   *   opening) since `asOf` may already have dropped such cells.
   */
  holdSnapshot(asOf: number, ms: number): Promise<void>;
  /** Bytes in memtables and SSTables (for split decisions). */
  approximateBytes(): number;
  /** A row key near the middle of the tablet's data, or undefined when it cannot be split. */
  splitKey(): Promise<Uint8Array | undefined>;
  /**
   * Copies the rows of `range` (default: this tablet's; clipped to the
   * target's) into `target`, an empty tablet of the same table opened
   * with {@link openTablet} (the child of a split, or a merge of
   * adjacent tablets, copied from each source): the stored cells as they
   * are (timestamps, deleted versions holding their slots), leaving out
   * what a major compaction would drop. The target's clock is raised
   * above this tablet's, so its later timestamps stay above copied ones.
   * The caller stops writes to this tablet during the copy and flushes the
   * target afterwards (it may be opened with `sync: "never"` meanwhile).
   *
   * @throws TabletError `bad_request` when `target` is not another open
   *   tablet of this table.
   */
  copyTo(
    target: Tablet,
    range?: KeyRange,
  ): Promise<{ entries: number; bytes: number }>;
  /**
   * This tablet's stored data in `range` (clipped to its own) as
   * references to its SSTables, for a split's or merge's new tablet to
   * open with ({@link OpenTabletOptions.shared}) instead of a copy:
   * flushes first, then names the files. `store` is this tablet's
   * storage name among its siblings. The caller stops writes first and
   * never compacts this tablet again (it is retired). Tablets whose data
   * cannot be shared leave it out (then {@link copyTo} is used).
   */
  shareRange?(store: string, range: KeyRange): Promise<SharedTablet>;
  /** How many SSTables it reads from its sources still (0 once compacted). */
  sharedTables?(): number;
  /** Writes the memtable to an SSTable (minor compaction). */
  flush(): Promise<void>;
  /** Flushes, then merges every SSTable into one, dropping deleted, surplus and expired cells (major compaction). */
  compact(): Promise<void>;
  /** Closes the store; acknowledged writes are in its commit log. */
  close(): Promise<void>;
}

/** Options of {@link openTablet}. */
export interface OpenTabletOptions {
  /** Passed to the LSM store (file store, memtable size, sync policy...). */
  lsm?: LsmStoreOptions;
  /** Wall clock in ms (default `Date.now`); the tablet never lets its timestamps go backwards. */
  clock?: () => number;
  /**
   * A new tablet starts from these sources' data (from
   * {@link Tablet.shareRange}), reading their files in place; its clock
   * starts above theirs. Ignored by a tablet that exists.
   */
  shared?: SharedTablet[];
}

/** A tablet's data in a range, as references (see {@link Tablet.shareRange}). */
export interface SharedTablet {
  /** The SSTables, newest first, each clipped to the range. */
  tables: SharedTable[];
  /** The source's last timestamp (the new tablet's clock starts above). */
  clock: number;
}
