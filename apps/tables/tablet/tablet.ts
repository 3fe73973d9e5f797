import {
  type CompactionFilter,
  compareBytes,
  type Entry,
  hasPrefix,
  type LsmCursor,
  LsmStore,
  type StoredEntry,
} from "@strata/lsm";
import {
  cellKey,
  CLOCK_KEY,
  columnMarkerKey,
  columnPrefix,
  decodeRow,
  escapeBody,
  familyMarkerKey,
  familyPrefix,
  parseKey,
  ROW_EXTRACTOR,
  ROW_SPACE_START,
  rowMarkerKey,
  rowPrefix,
} from "./key_codec.ts";
import { FlushGc } from "./flush_gc.ts";
import { RowAssembler } from "./row_assembler.ts";
import { RowLocks } from "./row_locks.ts";
import { RowScan } from "./row_scan.ts";
import { TabletClock } from "./tablet_clock.ts";
import { TabletError } from "./tablet_error.ts";
import type {
  Condition,
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
import {
  checkCondition,
  checkMutations,
  checkReadOptions,
  checkRowKey,
  parseSchema,
} from "./validate.ts";
import {
  decodeCell,
  decodeMarker,
  decodeMarkerChain,
  encodeCell,
  encodeMarker,
  encodeMarkerChain,
} from "./value_codec.ts";
import { type FamilyPolicy, VersionGc } from "./version_gc.ts";

/**
 * Opens (or creates) the tablet stored in `dir` serving `range` of the
 * table `schema`. `options.lsm` is passed to {@link LsmStore.open} (its
 * `compactionFilter` is the tablet's own).
 *
 * @throws TabletError `bad_request` for a bad schema or range; what
 *   `LsmStore.open` throws.
 */
export async function openTablet(
  dir: string,
  schema: TableSchema,
  range: KeyRange,
  options: OpenTabletOptions = {},
): Promise<Tablet> {
  const parsed = parseSchema(schema);
  checkRange(range);
  let tablet: LsmTablet | undefined;
  const shared = options.shared ?? [];
  // The highest write timestamp in the commit log's unflushed records:
  // every entry's value carries the timestamp of the write that made it.
  let replayed = 0;
  const lsm = await LsmStore.open(dir, {
    // Row Bloom filters in the tables (a caller's `lsm` may turn them off).
    prefixExtractor: ROW_EXTRACTOR,
    ...options.lsm,
    compactionFilter: () => tablet!.compactionStarts(),
    // A flush during the open (a long log replayed) keeps everything.
    flushFilter: () => tablet?.flushStarts(),
    ...(shared.length > 0 ? { shared: shared.flatMap((s) => s.tables) } : {}),
    // The clock mark goes into each flushed table (it covers every write
    // in the table), not into every write's batch.
    onFlush: () => [{
      key: CLOCK_KEY,
      value: encodeMarker(tablet?.lastTimestamp ?? replayed),
    }],
    onReplay: (key, value) => {
      if (value !== null) replayed = Math.max(replayed, writeTime(key, value));
    },
  });
  try {
    if (shared.length > 0) {
      // The sources' clock marks are outside the shared ranges: this
      // tablet's own starts above the highest of them.
      const floor = Math.max(...shared.map((s) => s.clock));
      const have = await lsm.get(CLOCK_KEY);
      if (have === undefined || decodeMarker(have) < floor) {
        await lsm.write([{ key: CLOCK_KEY, value: encodeMarker(floor) }]);
      }
    }
    const mark = await lsm.get(CLOCK_KEY);
    const clock = new TabletClock(
      options.clock ?? Date.now,
      Math.max(replayed, mark === undefined ? 0 : decodeMarker(mark)),
    );
    tablet = new LsmTablet(lsm, parsed.schema, parsed.policies, range, clock);
    return tablet;
  } catch (e) {
    await lsm.close();
    throw e;
  }
}

/**
 * The write timestamp an entry carries: a cell's sequence, a marker's (or
 * the clock mark's) time; 0 for a value this code cannot read.
 */
function writeTime(key: Uint8Array, value: Uint8Array): number {
  try {
    if (compareBytes(key, ROW_SPACE_START) < 0) {
      return compareBytes(key, CLOCK_KEY) === 0 ? decodeMarker(value) : 0;
    }
    return parseKey(key).kind === "cell"
      ? decodeCell(value).seq
      : decodeMarker(value);
  } catch {
    return 0;
  }
}

function checkRange(range: KeyRange): void {
  if (
    typeof range !== "object" || range === null ||
    !(range.start instanceof Uint8Array) ||
    (range.end !== null && !(range.end instanceof Uint8Array))
  ) {
    throw new TabletError(
      "bad_request",
      "a tablet range is { start: bytes, end: bytes | null }",
    );
  }
  if (range.end !== null && compareBytes(range.start, range.end) >= 0) {
    throw new TabletError("bad_request", "the tablet range is empty");
  }
}

/** A {@link Tablet} on one {@link LsmStore}; see key_codec.ts for the layout. */
export class LsmTablet implements Tablet {
  readonly range: KeyRange;
  readonly schema: TableSchema;
  #lsm: LsmStore;
  #policies: Map<string, FamilyPolicy>;
  #clock: TabletClock;
  #locks = new RowLocks();
  #closed = false;
  /**
   * No GC compaction started, no deletion marker was replaced without its
   * predecessor, and no flush left out a version made dead by a write,
   * after this time (ms, tablet clock): a consistent read as of a time at
   * or after it finds every entry it needs. Unknown before this tablet
   * was opened, so it starts there.
   */
  #horizon: number;
  /** GC is held until then (performance.now()), and while consistent scans run. */
  #holdUntil = 0;
  #consistentScans = 0;
  /** Writes being made durable. */
  #pending = new Set<Promise<void>>();

  constructor(
    lsm: LsmStore,
    schema: TableSchema,
    policies: Map<string, FamilyPolicy>,
    range: KeyRange,
    clock: TabletClock,
  ) {
    this.#lsm = lsm;
    this.schema = schema;
    this.#policies = policies;
    this.range = {
      start: range.start.slice(),
      end: range.end?.slice() ?? null,
    };
    this.#clock = clock;
    this.#horizon = clock.now();
  }

  mutateRow(
    row: Uint8Array,
    mutations: Mutation[],
  ): Promise<{ timestamp: number }> {
    // Not async functions: an uncontended row lock runs the write in the
    // caller's turn, with one promise per layer fewer.
    try {
      this.#checkRow(row);
      checkMutations(mutations, this.#policies);
      return this.#locks.with(row, (hash) => {
        this.#assertOpen();
        const chains = this.#markerChains(row, mutations);
        return this.#apply(row, hash, mutations, chains, stamped);
      });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  async checkAndMutate(
    row: Uint8Array,
    condition: Condition,
    onMatch: Mutation[],
    onMismatch: Mutation[] = [],
  ): Promise<{ matched: boolean; timestamp: number }> {
    this.#checkRow(row);
    checkCondition(condition, this.#policies);
    checkMutations(onMatch, this.#policies, true);
    checkMutations(onMismatch, this.#policies, true);
    if (onMatch.length === 0 && onMismatch.length === 0) {
      throw new TabletError("bad_request", "no mutations on either branch");
    }
    return await this.#locks.with(row, async (hash) => {
      this.#assertOpen();
      const got = await this.#read(row, {
        columns: [{ family: condition.family, qualifier: condition.qualifier }],
        versions: 1,
      });
      const cur = got?.cells[0]?.value;
      const matched = condition.equals === null
        ? cur === undefined
        : cur !== undefined && compareBytes(cur, condition.equals) === 0;
      const ms = matched ? onMatch : onMismatch;
      const timestamp = ms.length === 0 ? this.#clock.now() : await this.#apply(
        row,
        hash,
        ms,
        this.#markerChains(row, ms),
        timeOf,
      );
      return { matched, timestamp };
    });
  }

  /**
   * While GC is held, the times of the markers `mutations` will replace
   * (see {@link encodeMarkerChain}); undefined when not held. Not held
   * means no await here, so a hold cannot start before the write.
   */
  #markerChains(
    row: Uint8Array,
    mutations: Mutation[],
  ): Promise<Map<string, number[]>> | undefined {
    if (!this.#held()) return undefined;
    const keys: Uint8Array[] = [];
    for (const m of mutations) {
      if (m.op === "deleteRow") keys.push(rowMarkerKey(row));
      else if (m.op === "deleteFamily") {
        keys.push(familyMarkerKey(row, m.family));
      } else if (m.op === "deleteCells" && m.timestamp === undefined) {
        keys.push(columnMarkerKey(row, m.family, m.qualifier));
      }
    }
    if (keys.length === 0) return undefined;
    return (async () => {
      const chains = new Map<string, number[]>();
      for (const k of keys) {
        const v = await this.#lsm.get(k);
        chains.set(hex(k), v === undefined ? [] : decodeMarkerChain(v));
      }
      return chains;
    })();
  }

  /**
   * A marker entry's value at `t`: with the chain of the markers it
   * replaces while GC is held; otherwise alone, and then consistent reads
   * as of times before `t` are refused (the replaced marker is gone).
   */
  #markerValue(
    key: Uint8Array,
    t: number,
    chains: Map<string, number[]> | undefined,
  ): Uint8Array {
    if (chains === undefined) {
      this.#horizon = Math.max(this.#horizon, t);
      return encodeMarker(t);
    }
    const chain = [t, ...(chains.get(hex(key)) ?? [])];
    if (chain.length > MAX_MARKER_CHAIN) {
      chain.length = MAX_MARKER_CHAIN;
      this.#horizon = Math.max(this.#horizon, chain[MAX_MARKER_CHAIN - 1]!);
    }
    return encodeMarkerChain(chain);
  }

  /** GC is held for a consistent read. */
  #held(): boolean {
    if (this.#consistentScans > 0) return true;
    // Every mutation asks: no clock read (a quarter of a microsecond)
    // unless a hold was taken, and none once it has run out.
    if (this.#holdUntil === 0) return false;
    if (performance.now() < this.#holdUntil) return true;
    this.#holdUntil = 0;
    return false;
  }

  /**
   * Builds the row mutation's batch and writes it. The timestamp is taken
   * and the write issued without a turn of the event loop between them,
   * so commit-log order is timestamp order. `hash` is the row's hash from
   * its lock, which picks the row's slot in the clock.
   */
  #apply<T>(
    row: Uint8Array,
    hash: number,
    mutations: Mutation[],
    chainsOrPending:
      | Map<string, number[]>
      | Promise<Map<string, number[]>>
      | undefined,
    answer: (t: number) => T,
  ): Promise<T> {
    if (chainsOrPending instanceof Promise) {
      return chainsOrPending.then((c) =>
        this.#apply(row, hash, mutations, c, answer)
      );
    }
    const chains = chainsOrPending;
    const t = this.#clock.next(hash);
    // `ts` of cell entries; markers have -1.
    let batch: (Entry & { ts: number })[] = [];
    // Cells of this mutation written before a marker carry the marker's own
    // write timestamp, which the marker does not hide (it hides what was
    // written before it): drop those with timestamp <= t here.
    const dropUnder = (prefix: Uint8Array) => {
      batch = batch.filter((e) => !(e.ts <= t && hasPrefix(e.key, prefix)));
    };
    for (const m of mutations) {
      switch (m.op) {
        case "put": {
          const ts = m.timestamp ?? t;
          batch.push({
            key: cellKey(row, m.family, m.qualifier, ts),
            value: encodeCell(false, t, m.value),
            ts,
          });
          break;
        }
        case "deleteCells":
          if (m.timestamp !== undefined) {
            batch.push({
              key: cellKey(row, m.family, m.qualifier, m.timestamp),
              value: encodeCell(true, t, EMPTY),
              ts: m.timestamp,
            });
          } else {
            dropUnder(columnPrefix(row, m.family, m.qualifier));
            const key = columnMarkerKey(row, m.family, m.qualifier);
            batch.push({
              key,
              value: this.#markerValue(key, t, chains),
              ts: -1,
            });
          }
          break;
        case "deleteFamily":
          dropUnder(familyPrefix(row, m.family));
          {
            const key = familyMarkerKey(row, m.family);
            batch.push({
              key,
              value: this.#markerValue(key, t, chains),
              ts: -1,
            });
          }
          break;
        case "deleteRow":
          dropUnder(EMPTY);
          {
            const key = rowMarkerKey(row);
            batch.push({
              key,
              value: this.#markerValue(key, t, chains),
              ts: -1,
            });
          }
          break;
      }
    }
    // Timestamps keep rising across a restart even if the wall clock went
    // back meanwhile: `t` is in the record (in each entry's value), so
    // replaying the log finds it, and a flush writes the clock mark into
    // its table (openTablet's onFlush, onReplay).
    const written = this.#lsm.write(batch);
    // Tracked so a consistent read as of `t` or later waits for it.
    this.#pending.add(written);
    // The answer is made here (`answer`), not in a `then` of the caller's:
    // one promise fewer on every put.
    return written.then(() => {
      this.#pending.delete(written);
      return answer(t);
    }, (e) => {
      this.#pending.delete(written);
      throw e;
    });
  }

  getRow(
    row: Uint8Array,
    options: ReadOptions = {},
  ): Promise<Row | undefined> {
    // Not an async function: a row read from memtables and cached blocks
    // answers with an already resolved promise.
    try {
      this.#checkRow(row);
      checkReadOptions(options, this.#policies);
      const r = this.#read(row, options);
      return r instanceof Promise ? r : Promise.resolve(r);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** The row; a promise only when a table block must be read. */
  #read(
    row: Uint8Array,
    options: ReadOptions,
  ): Row | undefined | Promise<Row | undefined> {
    this.#assertOpen();
    const asm = new RowAssembler(this.#policies, this.#clock.now(), options);
    // One row is a short range read at once: its memtable entries are
    // gathered, not iterated over a clone.
    const cursor = this.#lsm.cursor({ prefix: rowPrefix(row), gather: true });
    try {
      while (true) {
        const e = cursor.next();
        if (e instanceof Promise) return this.#readSlow(cursor, asm, e);
        if (e === undefined) return asm.finish();
        asm.add(e.key, e.value);
      }
    } catch (err) {
      cursor.close();
      throw err;
    }
  }

  async #readSlow(
    cursor: LsmCursor,
    asm: RowAssembler,
    pending: Promise<StoredEntry | undefined>,
  ): Promise<Row | undefined> {
    try {
      let e: StoredEntry | undefined | Promise<StoredEntry | undefined> =
        pending;
      while (true) {
        if (e instanceof Promise) e = await e;
        if (e === undefined) return asm.finish();
        asm.add(e.key, e.value);
        e = cursor.next();
      }
    } finally {
      cursor.close();
    }
  }

  scan(options: ScanOptions = {}): AsyncGenerator<Row> {
    if (options.consistent === true) return this.#consistentScan(options);
    return new RowScan(() => {
      const range = this.#scanRange(options);
      if (range === undefined) return undefined;
      return {
        cursor: this.#lsm.cursor(range),
        asm: new RowAssembler(this.#policies, this.#clock.now(), options),
        limit: options.limit ?? Infinity,
      };
    });
  }

  /** A scan as of `asOf` that waits for earlier writes and holds GC meanwhile. */
  async *#consistentScan(options: ScanOptions): AsyncGenerator<Row> {
    const range = this.#scanRange(options);
    if (range === undefined) return;
    const asOf = options.asOf;
    if (asOf === undefined) {
      throw new TabletError("bad_request", "a consistent scan needs asOf");
    }
    // Checked and held in one turn: no GC compaction starts in between.
    this.#checkHorizon(asOf);
    this.#consistentScans++;
    try {
      await this.#settle(asOf);
      this.#checkHorizon(asOf);
      yield* new RowScan(() => ({
        cursor: this.#lsm.cursor(range),
        asm: new RowAssembler(this.#policies, asOf, options, asOf),
        limit: options.limit ?? Infinity,
      }));
    } finally {
      this.#consistentScans--;
    }
  }

  /**
   * Checks a scan's options; the LSM range of the rows it reads
   * (clipped to the tablet's range), undefined when it reads none.
   */
  #scanRange(
    options: ScanOptions,
  ): { start: Uint8Array; end?: Uint8Array; prefix?: Uint8Array } | undefined {
    checkReadOptions(options, this.#policies);
    this.#assertOpen();
    const { start, end, prefix, limit } = options;
    if (
      start !== undefined && end !== undefined && compareBytes(start, end) > 0
    ) {
      throw new TabletError("bad_request", "scan start is after its end");
    }
    if (limit === 0) return undefined;
    let lo = this.range.start;
    if (start !== undefined && compareBytes(start, lo) > 0) lo = start;
    let hi = this.range.end;
    if (end !== undefined && (hi === null || compareBytes(end, hi) < 0)) {
      hi = end;
    }
    if (hi !== null && compareBytes(lo, hi) >= 0) return undefined;
    // Entries are pulled one at a time (no read-ahead past the last row
    // wanted) and awaited only when a block must be read.
    return {
      start: lo.length === 0 ? ROW_SPACE_START : rowPrefix(lo),
      end: hi === null ? undefined : rowPrefix(hi),
      prefix: prefix === undefined ? undefined : escapeBody(prefix),
    };
  }

  async holdSnapshot(asOf: number, ms: number): Promise<void> {
    this.#assertOpen();
    checkReadOptions({ asOf }, this.#policies);
    if (!Number.isSafeInteger(ms) || ms < 0 || ms > MAX_HOLD_MS) {
      throw new TabletError(
        "bad_request",
        `a hold lasts 0..${MAX_HOLD_MS} ms`,
      );
    }
    this.#checkHorizon(asOf);
    this.#holdUntil = Math.max(this.#holdUntil, performance.now() + ms);
    await this.#settle(asOf);
    // A marker written unchained just before the hold may have passed asOf.
    this.#checkHorizon(asOf);
  }

  /** @throws TabletError `compacted` when GC may have run after `asOf`. */
  #checkHorizon(asOf: number): void {
    if (asOf < this.#horizon) {
      throw new TabletError(
        "compacted",
        `cells as of ${asOf} may have been garbage-collected: this tablet ` +
          `was compacted, opened or had a deletion replaced unheld at ` +
          `${this.#horizon}; read as of a later time`,
      );
    }
  }

  /**
   * Waits until later writes get timestamps above `asOf` and the writes
   * at or before it are applied.
   */
  async #settle(asOf: number): Promise<void> {
    const ahead = asOf - this.#clock.now();
    if (ahead > MAX_AHEAD_MS) {
      throw new TabletError(
        "bad_request",
        `asOf is ${ahead} ms ahead of the tablet's clock`,
      );
    }
    if (ahead >= 0) {
      await new Promise((r) => setTimeout(r, ahead + 1));
      // A no-op unless the wall clock stands still (or went back).
      this.#clock.observe(asOf);
    }
    // Every write begun before: those at or before asOf must be seen, and
    // the others may have moved the horizon.
    await Promise.allSettled([...this.#pending]);
  }

  approximateBytes(): number {
    const s = this.#lsm.stats();
    return s.memtableBytes + s.tableBytes;
  }

  async splitKey(): Promise<Uint8Array | undefined> {
    this.#assertOpen();
    // Block boundaries of the SSTables split the data into pieces of about
    // one block each: their median row is near the middle by bytes.
    const bounds: Uint8Array[] = [];
    // Shared tables hold keys of both sides of a past split: only this
    // tablet's count.
    const [lo, hi] = lsmRange(this.range);
    for (const t of this.#lsm.tables) {
      for (const k of t.blockLastKeys) {
        if (
          compareBytes(k, lo) >= 0 &&
          (hi === undefined || compareBytes(k, hi) < 0)
        ) bounds.push(k);
      }
    }
    let candidate: Uint8Array | undefined;
    if (bounds.length >= 2) {
      bounds.sort(compareBytes);
      candidate = decodeRow(bounds[bounds.length >> 1]!);
    } else {
      // Little data: the middle row of a full scan.
      const rows: Uint8Array[] = [];
      for await (const r of this.scan({ versions: 1 })) rows.push(r.key);
      candidate = rows[rows.length >> 1];
    }
    if (candidate === undefined) return undefined;
    // Both halves must hold a row: the candidate must be above the first.
    for await (const r of this.scan({ versions: 1, limit: 1 })) {
      return compareBytes(r.key, candidate) < 0 ? candidate : undefined;
    }
    return undefined;
  }

  /** `range` clipped to this tablet's own (empty when start >= end). */
  #clip(range: KeyRange): KeyRange {
    let start = range.start;
    if (compareBytes(this.range.start, start) > 0) start = this.range.start;
    let end = range.end;
    if (
      this.range.end !== null &&
      (end === null || compareBytes(this.range.end, end) < 0)
    ) {
      end = this.range.end;
    }
    return { start, end };
  }

  /**
   * The stored entries of rows in `range` (clipped to this tablet's), in
   * key order, that a major compaction would keep: what a copy of those
   * rows needs (see split.ts).
   */
  async *liveEntries(
    range: KeyRange,
  ): AsyncGenerator<{ key: Uint8Array; value: Uint8Array }> {
    this.#assertOpen();
    const { start: lo, end: hi } = this.#clip(range);
    if (hi !== null && compareBytes(lo, hi) >= 0) return;
    const keep = this.compactionFilter();
    for await (
      const e of this.#lsm.scan({
        start: lo.length === 0 ? ROW_SPACE_START : rowPrefix(lo),
        end: hi === null ? undefined : rowPrefix(hi),
      })
    ) {
      if (keep(e.key, e.value)) yield e;
    }
  }

  async shareRange(store: string, range: KeyRange): Promise<SharedTablet> {
    this.#assertOpen();
    const { start: lo, end: hi } = this.#clip(range);
    if (hi !== null && compareBytes(lo, hi) >= 0) {
      throw new TabletError("bad_request", "the range is outside the tablet");
    }
    await Promise.allSettled([...this.#pending]);
    const [start, end] = lsmRange({ start: lo, end: hi });
    const tables = await this.#lsm.shareRange(store, start, end);
    return { tables, clock: this.#clock.last };
  }

  sharedTables(): number {
    return this.#lsm.stats().sharedTables;
  }

  /** The last write timestamp this tablet gave (a copy's clock starts above it). */
  get lastTimestamp(): number {
    return this.#clock.last;
  }

  async copyTo(
    target: Tablet,
    range: KeyRange = this.range,
  ): Promise<{ entries: number; bytes: number }> {
    this.#assertOpen();
    if (!(target instanceof LsmTablet) || target === this) {
      throw new TabletError(
        "bad_request",
        "the target must be another open tablet",
      );
    }
    if (target.schema.name !== this.schema.name) {
      throw new TabletError(
        "bad_request",
        "the target is a tablet of another table",
      );
    }
    let lo = range.start;
    if (compareBytes(target.range.start, lo) > 0) lo = target.range.start;
    let hi = range.end;
    if (
      target.range.end !== null &&
      (hi === null || compareBytes(target.range.end, hi) < 0)
    ) {
      hi = target.range.end;
    }
    let batch: Entry[] = [];
    let size = 0;
    let entries = 0;
    let bytes = 0;
    for await (const e of this.liveEntries({ start: lo, end: hi })) {
      batch.push(e);
      size += e.key.length + e.value.length;
      if (size >= COPY_BATCH_BYTES) {
        await target.#ingest(batch, this.#clock.last);
        entries += batch.length;
        bytes += size;
        batch = [];
        size = 0;
      }
    }
    await target.#ingest(batch, this.#clock.last);
    return { entries: entries + batch.length, bytes: bytes + size };
  }

  /** Writes copied entries as they are, raising the clock above `floor`. */
  #ingest(batch: Entry[], floor: number): Promise<void> {
    this.#assertOpen();
    this.#clock.observe(floor);
    return this.#lsm.write([
      ...batch,
      { key: CLOCK_KEY, value: encodeMarker(this.#clock.last) },
    ]);
  }

  async flush(): Promise<void> {
    this.#assertOpen();
    await this.#lsm.flush();
  }

  async compact(): Promise<void> {
    this.#assertOpen();
    await this.#lsm.flush();
    await this.#lsm.compact();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#lsm.close();
  }

  /**
   * The filter of a merging compaction that starts now: everything while
   * GC is held for a consistent read, else {@link compactionFilter}
   * (and the horizon of consistent reads moves up to now).
   */
  compactionStarts(): (key: Uint8Array, value: Uint8Array) => boolean {
    if (this.#held()) return () => true;
    this.#horizon = Math.max(this.#horizon, this.#clock.now());
    return this.compactionFilter();
  }

  /**
   * The filter of a flush that starts now: none while GC is held for a
   * consistent read (the flush keeps everything); else {@link FlushGc},
   * and the horizon of consistent reads moves up to the latest write
   * that made a left-out version dead.
   */
  flushStarts(): CompactionFilter | undefined {
    if (this.#held()) return undefined;
    const gc = new FlushGc(this.#policies);
    return (key, value) => {
      if (gc.keep(key, value)) return true;
      if (gc.horizon > this.#horizon) this.#horizon = gc.horizon;
      return false;
    };
  }

  /**
   * The LSM compaction filter: keeps what {@link VersionGc} says exists
   * (live versions and slot-holding deleted versions); drops markers,
   * whose cells are dropped in the same pass (every table takes part, and
   * everything newer, in the memtable, was written after them).
   */
  compactionFilter(): (key: Uint8Array, value: Uint8Array) => boolean {
    const gc = new VersionGc(this.#policies, this.#clock.now());
    return (key, value) => {
      if (compareBytes(key, ROW_SPACE_START) < 0) return true;
      try {
        const p = parseKey(key);
        const v = p.kind === "cell"
          ? gc.classify(key, p, -1, decodeCell(value))
          : gc.classify(key, p, decodeMarker(value), undefined);
        return v === "live" || v === "tombstone";
      } catch {
        // A key this code cannot read is kept, not silently destroyed.
        return true;
      }
    };
  }

  #checkRow(row: Uint8Array): void {
    checkRowKey(row);
    const { start, end } = this.range;
    if (
      compareBytes(row, start) < 0 ||
      (end !== null && compareBytes(row, end) >= 0)
    ) {
      throw new TabletError(
        "out_of_range",
        "the row is outside this tablet's key range",
      );
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new TabletError("closed", "the tablet is closed");
  }
}

const EMPTY = new Uint8Array(0);
/** The LSM keys of the rows of `range`: `[start, end)`, end undefined = +∞. */
function lsmRange(range: KeyRange): [Uint8Array, Uint8Array | undefined] {
  return [
    range.start.length === 0 ? ROW_SPACE_START : rowPrefix(range.start),
    range.end === null ? undefined : rowPrefix(range.end),
  ];
}
const stamped = (timestamp: number) => ({ timestamp });
const timeOf = (timestamp: number) => timestamp;
/** Bytes per write batch when copying (well under a commit-log record's 16 MiB). */
const COPY_BATCH_BYTES = 1 << 20;
/** Longest GC hold for a consistent read, ms. */
const MAX_HOLD_MS = 3_600_000;
/** Marker times kept in a chain (older ones: consistent reads before them are refused). */
const MAX_MARKER_CHAIN = 32;
const hex = (b: Uint8Array) =>
  Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
/** How far ahead of the tablet's clock a consistent read may ask, ms. */
const MAX_AHEAD_MS = 5_000;
