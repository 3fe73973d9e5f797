/**
 * `memory_tablet.ts`: a tablet of a table in `memory` or `write-behind`
 * storage mode. The rows live in the serving process only: a hash map of
 * rows (a sorted key list is built lazily for scans, splits and SCAN), no
 * SSTables, no commit log. It implements the whole {@link Tablet}
 * interface, so the HTTP API, splits and moves work unchanged, plus the
 * key-value calls the RESP listener makes straight into it (`getValue`,
 * `setValue`, …: one map lookup each, no encoding).
 *
 * Differences from a disk tablet, by design: a delete drops the cells at
 * once (there is no compaction layer, so no version slot is kept for a
 * deleted version), and every row may carry an expiry deadline (absolute
 * wall-clock ms, Redis' `EXPIRE`): an expired row is gone for every read,
 * dropped on access (lazy) and by {@link MemoryTablet.expireSome}
 * (active sampling, as Redis does).
 *
 * Rows are keyed by their bytes as a latin1 string (one char per byte), so
 * string order is byte order.
 */
import { compareBytes, keyString, prefixEnd } from "@strata/lsm";
import type {
  Cell,
  Condition,
  KeyRange,
  Mutation,
  ReadOptions,
  Row,
  ScanOptions,
  TableSchema,
  Tablet,
} from "../tablet/types.ts";
import { TabletError } from "../tablet/tablet_error.ts";
import { TabletClock } from "../tablet/tablet_clock.ts";
import { ByteIndex } from "./byte_index.ts";

/** A row as a memory tablet keeps it. */
export interface MemRow {
  /** The row key as a latin1 string (bytes on demand: {@link fromLatin1}). */
  k: string;
  /** Sorted by family, qualifier, then timestamp newest first. */
  cells: Cell[];
  /** Expiry, absolute wall-clock ms; 0 = none. */
  deadline: number;
  /**
   * Last access through the key-value calls, wall-clock ms (the eviction
   * clock, Redis' LRU field); absent: never accessed that way (oldest).
   */
  lru?: number;
  /** Index in the tablet's sampling array (set by the tablet). */
  slot?: number;
  /**
   * The last write timestamp the tablet's clock gave this row (cells'
   * explicit timestamps aside); absent: none since it was loaded.
   */
  stamp?: number;
}

const EMPTY = new Uint8Array(0);
/** Bytes counted per row and per cell on top of keys and values. */
const ROW_OVERHEAD = 64;
const CELL_OVERHEAD = 48;

/** Bytes as a latin1 string (one char per byte; order-preserving). */
export const latin1: (bytes: Uint8Array) => string = keyString;

/** A latin1 string as bytes. */
export function fromLatin1(s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
  return b;
}

const cmpCell = (a: Cell, b: Cell): number =>
  a.family < b.family
    ? -1
    : a.family > b.family
    ? 1
    : compareBytes(a.qualifier, b.qualifier) || b.timestamp - a.timestamp;

const cellBytes = (c: Cell) =>
  c.qualifier.length + c.value.length + c.family.length + CELL_OVERHEAD;

/** Options of a {@link MemoryTablet}. */
export interface MemoryTabletOptions {
  /** Wall clock, ms (default `Date.now`). */
  clock?: () => number;
  /** Run by `close()` before the tablet closes (the handover snapshot). */
  onClose?: (t: MemoryTablet) => Promise<void>;
  /** Run by `discard()` (stops the write-behind timer). */
  onDiscard?: (t: MemoryTablet) => void;
}

/** An in-memory tablet. */
export class MemoryTablet implements Tablet {
  readonly range: KeyRange;
  readonly schema: TableSchema;
  /** The family the key-value calls use (the schema's first). */
  readonly kvFamily: string;
  #rows = new Map<string, MemRow>();
  /** The rows again, found by key bytes in place (the RESP hot path). */
  #index = new ByteIndex<MemRow>();
  /** The rows again, in no order, for O(1) random sampling (eviction). */
  #slots: MemRow[] = [];
  #sorted: string[] | null = [];
  #withDeadline = new Set<string>();
  #expiryCursor: Iterator<string> | undefined;
  #volatileCursor: Iterator<string> | undefined;
  #bytes = 0;
  #clock: TabletClock;
  #wall: () => number;
  #closed = false;
  #maxVersions = new Map<string, number>();
  #ttl = new Map<string, number>();
  /** Bumped by every change (write-behind skips unchanged tablets). */
  version = 0;
  readonly #o: MemoryTabletOptions;
  readonly #lo: string;
  readonly #hi: string | null;

  /** @param schema the table; @param range the rows served. */
  constructor(
    schema: TableSchema,
    range: KeyRange,
    options: MemoryTabletOptions = {},
  ) {
    this.schema = schema;
    this.range = range;
    this.kvFamily = schema.families[0]!.name;
    this.#wall = options.clock ?? Date.now;
    this.#clock = new TabletClock(this.#wall);
    this.#o = options;
    this.#lo = latin1(range.start);
    this.#hi = range.end === null ? null : latin1(range.end);
    for (const f of schema.families) {
      this.#maxVersions.set(f.name, f.maxVersions ?? 1);
      if (f.ttlMs) this.#ttl.set(f.name, f.ttlMs);
    }
  }

  /** Rows held (expired ones not yet dropped included). */
  get rowCount(): number {
    return this.#rows.size;
  }

  /** The highest write timestamp handed out. */
  get lastTimestamp(): number {
    return this.#clock.last;
  }

  #assertOpen(): void {
    if (this.#closed) throw new TabletError("closed", "the tablet is closed");
  }

  /** Whether the row `k` (latin1) belongs to this tablet. */
  holdsKey(k: string): boolean {
    return k >= this.#lo && (this.#hi === null || k < this.#hi);
  }

  /** Whether the row `key` belongs to this tablet. */
  holds(key: Uint8Array): boolean {
    return compareBytes(key, this.range.start) >= 0 &&
      (this.range.end === null || compareBytes(key, this.range.end) < 0);
  }

  #checkRow(key: Uint8Array): void {
    this.#assertOpen();
    if (key.length === 0) {
      throw new TabletError("bad_request", "the row key is empty");
    }
    if (!this.holds(key)) {
      throw new TabletError(
        "out_of_range",
        "the row is outside this tablet's range",
      );
    }
  }

  /** The row `k`, dropping it when expired. */
  #live(k: string, now: number): MemRow | undefined {
    const r = this.#rows.get(k);
    if (r && r.deadline !== 0 && r.deadline <= now) {
      this.#drop(k, r);
      return undefined;
    }
    return r;
  }

  #drop(k: string, r: MemRow): void {
    this.#rows.delete(k);
    this.#index.remove(r);
    // Swap-remove from the sampling array.
    const last = this.#slots.pop()!;
    if (last !== r) {
      this.#slots[r.slot!] = last;
      last.slot = r.slot!;
    }
    this.#bytes -= rowBytes(r);
    if (r.deadline !== 0) this.#withDeadline.delete(k);
    this.#sorted = null;
    this.version++;
  }

  /** Puts `r` under `k` (replacing any row there). */
  #put(k: string, r: MemRow): void {
    const old = this.#rows.get(k);
    if (old) {
      this.#bytes -= rowBytes(old);
      if (old.deadline !== 0 && r.deadline === 0) this.#withDeadline.delete(k);
      r.slot = old.slot!;
      this.#slots[r.slot] = r;
      this.#index.replace(old, r);
    } else {
      this.#sorted = null;
      r.slot = this.#slots.length;
      this.#slots.push(r);
      this.#index.add(r);
    }
    this.#rows.set(k, r);
    this.#bytes += rowBytes(r);
    if (r.deadline !== 0) this.#withDeadline.add(k);
    this.version++;
  }

  // ---- key-value calls (the RESP listener) --------------------------------

  /** The value of key `k` (newest cell of the first family, empty qualifier). */
  getValue(k: string, now: number): Uint8Array | undefined {
    const r = this.#live(k, now);
    if (!r) return undefined;
    r.lru = now;
    for (const c of r.cells) {
      if (c.family === this.kvFamily && c.qualifier.length === 0) {
        return c.value;
      }
    }
    return undefined;
  }

  /** Whether key `k` exists (any cell). */
  hasKey(k: string, now: number): boolean {
    return this.#live(k, now) !== undefined;
  }

  /**
   * Replaces row `k` by one cell holding `value`, with `deadline` (0 =
   * none). `value` is kept: pass a copy.
   */
  setValue(k: string, value: Uint8Array, deadline: number): void {
    const old = this.#rows.get(k);
    if (old && old.cells.length === 1) {
      // The hot path (SET over an existing key): one map lookup, the row
      // and its cell updated in place.
      const c = old.cells[0]!;
      if (c.family === this.kvFamily && c.qualifier.length === 0) {
        this.#bytes += value.length - c.value.length;
        c.value = value;
        this.#rewritten(old, c, deadline);
        return;
      }
    }
    const t = this.#clock.nextAfter(old?.stamp ?? 0);
    this.#put(k, {
      k,
      cells: [{ family: this.kvFamily, qualifier: EMPTY, timestamp: t, value }],
      deadline,
      // Wall ms like a read's (write timestamps can run ahead of it).
      lru: this.#wall(),
      slot: -1,
      stamp: t,
    });
  }

  /** Stamps a cell just rewritten in place and its row's access and expiry. */
  #rewritten(row: MemRow, c: Cell, deadline: number): void {
    c.timestamp = row.stamp = this.#clock.nextAfter(row.stamp ?? 0);
    row.lru = this.#wall();
    if (row.deadline !== 0 && deadline === 0) this.#withDeadline.delete(row.k);
    else if (deadline !== 0) this.#withDeadline.add(row.k);
    row.deadline = deadline;
    this.version++;
  }

  /**
   * Like {@link setValue}, but copies `bytes` (a view the caller reuses):
   * over a key holding a value of the same length, the bytes are written
   * into that value in place. Allocating a 100-byte `Uint8Array` costs
   * more than the rest of a SET (1.2-1.6 µs against about 0.1 µs for the
   * copy, measured on this machine), and a cache is mostly overwritten
   * with values of one size. A reference taken earlier by `getValue` sees
   * the new bytes, so a caller that must return the old value (SET … GET)
   * uses `setValue` with a copy instead.
   */
  writeValue(k: string, bytes: Uint8Array, deadline: number): void {
    const old = this.#rows.get(k);
    if (old && old.cells.length === 1) {
      const c = old.cells[0]!;
      if (
        c.value.length === bytes.length && c.family === this.kvFamily &&
        c.qualifier.length === 0
      ) {
        c.value.set(bytes);
        this.#rewritten(old, c, deadline);
        return;
      }
    }
    this.setValue(k, bytes.slice(), deadline);
  }

  /** Whether the key of `len` bytes of `b` at `off` belongs to this tablet. */
  holdsAt(b: Uint8Array, off: number, len: number): boolean {
    return compareAt(b, off, len, this.range.start) >= 0 &&
      (this.range.end === null || compareAt(b, off, len, this.range.end) < 0);
  }

  /** The live row whose key is `len` bytes of `b` at `off`. */
  #liveAt(b: Uint8Array, off: number, len: number, now: number) {
    const r = this.#index.getAt(b, off, len);
    if (r && r.deadline !== 0 && r.deadline <= now) {
      this.#drop(r.k, r);
      return undefined;
    }
    return r;
  }

  /**
   * {@link getValue} of the key given as `len` bytes of `b` at `off` (a
   * range of the RESP parser's buffer): no key string is built.
   */
  getValueAt(
    b: Uint8Array,
    off: number,
    len: number,
    now: number,
  ): Uint8Array | undefined {
    const r = this.#liveAt(b, off, len, now);
    if (!r) return undefined;
    r.lru = now;
    const cells = r.cells;
    for (let i = 0; i < cells.length; i++) {
      const c = cells[i]!;
      if (c.family === this.kvFamily && c.qualifier.length === 0) {
        return c.value;
      }
    }
    return undefined;
  }

  /**
   * {@link writeValue} with no expiry (Redis' plain SET clears it) of the
   * key `len` bytes of `b` at `off` and the value `vlen` bytes at `voff`:
   * over a live key whose value has the same length, no allocation at all.
   */
  writeValueAt(
    b: Uint8Array,
    off: number,
    len: number,
    voff: number,
    vlen: number,
    now: number,
  ): void {
    const old = this.#liveAt(b, off, len, now);
    if (old && old.cells.length === 1) {
      const c = old.cells[0]!;
      if (
        c.value.length === vlen && c.family === this.kvFamily &&
        c.qualifier.length === 0
      ) {
        const v = c.value;
        // A loop for short values: cheaper than a view plus the set builtin.
        if (vlen <= 256) { for (let i = 0; i < vlen; i++) v[i] = b[voff + i]!; }
        else v.set(b.subarray(voff, voff + vlen));
        c.timestamp = old.stamp = this.#clock.nextAfter(old.stamp ?? 0);
        old.lru = now;
        if (old.deadline !== 0) {
          this.#withDeadline.delete(old.k);
          old.deadline = 0;
        }
        this.version++;
        return;
      }
    }
    this.setValue(
      old ? old.k : latin1(b.subarray(off, off + len)),
      b.slice(voff, voff + vlen),
      0,
    );
  }

  /** Deletes row `k`; whether it existed (and had not expired). */
  deleteKey(k: string, now: number): boolean {
    const r = this.#live(k, now);
    if (!r) return false;
    this.#drop(k, r);
    return true;
  }

  /** Row `k`'s deadline (0 = none), or undefined when it does not exist. */
  deadlineOf(k: string, now: number): number | undefined {
    return this.#live(k, now)?.deadline;
  }

  /** Sets row `k`'s deadline (0 = persist); false when it does not exist. */
  setDeadline(k: string, deadline: number, now: number): boolean {
    const r = this.#live(k, now);
    if (!r) return false;
    if (deadline !== 0 && deadline <= now) {
      this.#drop(k, r);
      return true;
    }
    r.deadline = deadline;
    if (deadline !== 0) this.#withDeadline.add(k);
    else this.#withDeadline.delete(k);
    this.version++;
    return true;
  }

  /**
   * Up to `n` rows picked at random (with repeats), for eviction: key,
   * last access (0 when never accessed by key) and deadline.
   */
  sample(n: number): { k: string; lru: number; deadline: number }[] {
    const out = [];
    const len = this.#slots.length;
    for (let i = 0; i < n && len > 0; i++) {
      const r = this.#slots[Math.floor(Math.random() * len)]!;
      out.push({ k: r.k, lru: r.lru ?? 0, deadline: r.deadline });
    }
    return out;
  }

  /** Rows with an expiry deadline (volatile-lru's candidates). */
  get volatileCount(): number {
    return this.#withDeadline.size;
  }

  /**
   * Up to `n` rows with a deadline, round robin over them (a Set has no
   * random access), for volatile-lru.
   */
  sampleVolatile(n: number): { k: string; lru: number; deadline: number }[] {
    const out = [];
    for (let i = 0; i < n && this.#withDeadline.size > 0; i++) {
      let it = this.#volatileCursor?.next();
      if (!it || it.done) {
        this.#volatileCursor = this.#withDeadline.values();
        it = this.#volatileCursor.next();
        if (it.done) break;
      }
      const r = this.#rows.get(it.value);
      if (r) out.push({ k: r.k, lru: r.lru ?? 0, deadline: r.deadline });
    }
    return out;
  }

  /**
   * Evicts row `k` if its last access is still `lru` (an access since it
   * was sampled makes it a worse candidate); the bytes freed, or 0.
   */
  evict(k: string, lru: number): number {
    const r = this.#rows.get(k);
    if (!r || (r.lru ?? 0) !== lru) return 0;
    const before = this.#bytes;
    this.#drop(k, r);
    return before - this.#bytes;
  }

  #sortedKeys(): string[] {
    if (!this.#sorted) this.#sorted = [...this.#rows.keys()].sort();
    return this.#sorted;
  }

  /**
   * Up to `count` live keys from `from` (inclusive, latin1) in key order,
   * and where to go on: the next key, or null at the tablet's end.
   */
  scanKeys(
    from: string,
    count: number,
    now: number,
  ): { keys: string[]; next: string | null } {
    const sorted = this.#sortedKeys();
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (sorted[mid]! < from) lo = mid + 1;
      else hi = mid;
    }
    const keys: string[] = [];
    let i = lo;
    for (; i < sorted.length && keys.length < count; i++) {
      const k = sorted[i]!;
      const r = this.#rows.get(k);
      if (r && (r.deadline === 0 || r.deadline > now)) keys.push(k);
    }
    return { keys, next: i < sorted.length ? sorted[i]! : null };
  }

  /**
   * Active expiry, as Redis: look at up to `sample` keys that have a
   * deadline (round robin) and drop the expired ones.
   * @returns [looked at, dropped].
   */
  expireSome(now: number, sample = 20): [number, number] {
    let seen = 0;
    let dropped = 0;
    if (this.#withDeadline.size === 0) return [0, 0];
    while (seen < sample) {
      let it = this.#expiryCursor?.next();
      if (!it || it.done) {
        this.#expiryCursor = this.#withDeadline.values();
        it = this.#expiryCursor.next();
        if (it.done) break;
      }
      seen++;
      const r = this.#rows.get(it.value);
      if (!r || r.deadline === 0) this.#withDeadline.delete(it.value);
      else if (r.deadline <= now) {
        this.#drop(it.value, r);
        dropped++;
      }
      if (seen >= this.#withDeadline.size + dropped) break;
    }
    return [seen, dropped];
  }

  /** Every row with its deadline (for snapshots), in no particular order. */
  rows(): IterableIterator<MemRow> {
    return this.#rows.values();
  }

  /** Loads rows (a snapshot or a split's half); the clock moves past `clock`. */
  load(rows: Iterable<MemRow>, clock: number): number {
    this.#clock.observe(clock);
    let n = 0;
    for (const r of rows) {
      if (!this.holdsKey(r.k)) continue;
      this.#put(r.k, r);
      n++;
    }
    return n;
  }

  // ---- the Tablet interface ------------------------------------------------

  #family(name: string): void {
    if (!this.#maxVersions.has(name)) {
      throw new TabletError(
        "bad_request",
        `unknown column family ${JSON.stringify(name)}`,
      );
    }
  }

  /** Applies mutations to a copy of `cells` at write time `t`. */
  #apply(cells: Cell[], mutations: Mutation[], t: number): Cell[] {
    let out = cells.slice();
    for (const m of mutations) {
      switch (m.op) {
        case "put": {
          this.#family(m.family);
          const ts = m.timestamp ?? t;
          if (!Number.isSafeInteger(ts) || ts < 0) {
            throw new TabletError("bad_request", "bad timestamp");
          }
          const cell: Cell = {
            family: m.family,
            qualifier: m.qualifier.slice(),
            timestamp: ts,
            value: m.value.slice(),
          };
          out = out.filter((c) => cmpCell(c, cell) !== 0);
          out.push(cell);
          out.sort(cmpCell);
          // Keep the family's newest maxVersions of this column.
          const max = this.#maxVersions.get(m.family)!;
          let seen = 0;
          out = out.filter((c) =>
            c.family !== m.family ||
            compareBytes(c.qualifier, cell.qualifier) !== 0 || ++seen <= max
          );
          break;
        }
        case "deleteCells":
          this.#family(m.family);
          out = out.filter((c) =>
            c.family !== m.family ||
            compareBytes(c.qualifier, m.qualifier) !== 0 ||
            (m.timestamp !== undefined
              ? c.timestamp !== m.timestamp
              : c.timestamp > t)
          );
          break;
        case "deleteFamily":
          this.#family(m.family);
          out = out.filter((c) => c.family !== m.family || c.timestamp > t);
          break;
        case "deleteRow":
          out = out.filter((c) => c.timestamp > t);
          break;
      }
    }
    return out;
  }

  #write(row: Uint8Array, mutations: Mutation[]): number {
    if (mutations.length === 0) {
      throw new TabletError("bad_request", "no mutations");
    }
    const k = latin1(row);
    const now = this.#wall();
    const old = this.#live(k, now);
    const t = this.#clock.nextAfter(old?.stamp ?? 0);
    const cells = this.#apply(old?.cells ?? [], mutations, t);
    if (cells.length === 0) {
      if (old) this.#drop(k, old);
    } else {
      this.#put(k, {
        k,
        cells,
        deadline: old?.deadline ?? 0,
        stamp: t,
      });
    }
    return t;
  }

  /** Applies a row mutation atomically (in memory: at once). */
  mutateRow(
    row: Uint8Array,
    mutations: Mutation[],
  ): Promise<{ timestamp: number }> {
    try {
      this.#checkRow(row);
      return Promise.resolve({ timestamp: this.#write(row, mutations) });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Check-and-mutate on the newest version of one cell. */
  checkAndMutate(
    row: Uint8Array,
    condition: Condition,
    onMatch: Mutation[],
    onMismatch: Mutation[] = [],
  ): Promise<{ matched: boolean; timestamp: number }> {
    try {
      this.#checkRow(row);
      this.#family(condition.family);
      const now = this.#wall();
      const r = this.#live(latin1(row), now);
      const cell = r ? this.#visible(r.cells, {}, now) : [];
      const current = cell.find((c) =>
        c.family === condition.family &&
        compareBytes(c.qualifier, condition.qualifier) === 0
      );
      const matched = condition.equals === null
        ? current === undefined
        : current !== undefined &&
          compareBytes(current.value, condition.equals) === 0;
      const ms = matched ? onMatch : onMismatch;
      const timestamp = ms.length > 0
        ? this.#write(row, ms)
        : this.#clock.now();
      return Promise.resolve({ matched, timestamp });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** The cells a read sees. */
  #visible(cells: Cell[], o: ReadOptions, now: number): Cell[] {
    const out: Cell[] = [];
    let prev: Cell | undefined;
    let n = 0;
    for (const c of cells) {
      if (o.asOf !== undefined && c.timestamp > o.asOf) continue;
      const ttl = this.#ttl.get(c.family);
      if (ttl !== undefined && c.timestamp <= now - ttl) continue;
      if (
        o.columns && !o.columns.some((col) =>
          col.family === c.family &&
          (col.qualifier === undefined ||
            compareBytes(col.qualifier, c.qualifier) === 0)
        )
      ) continue;
      const same = prev && prev.family === c.family &&
        compareBytes(prev.qualifier, c.qualifier) === 0;
      n = same ? n + 1 : 1;
      prev = c;
      const max = o.versions ?? this.#maxVersions.get(c.family) ?? 1;
      if (n <= max) out.push(c);
    }
    return out;
  }

  /** One row's visible cells, or undefined. */
  getRow(row: Uint8Array, options: ReadOptions = {}): Promise<Row | undefined> {
    try {
      this.#checkRow(row);
      const now = this.#wall();
      const r = this.#live(latin1(row), now);
      const cells = r ? this.#visible(r.cells, options, now) : [];
      return Promise.resolve(
        cells.length ? { key: row.slice(), cells } : undefined,
      );
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Rows in key order within the options' bounds. */
  async *scan(options: ScanOptions = {}): AsyncGenerator<Row> {
    if (options.consistent) throw noSnapshots();
    this.#assertOpen();
    let start = this.range.start;
    if (options.start && compareBytes(options.start, start) > 0) {
      start = options.start;
    }
    if (options.prefix && compareBytes(options.prefix, start) > 0) {
      start = options.prefix;
    }
    let end = this.range.end;
    const bounds = [options.end, options.prefix && prefixEnd(options.prefix)];
    for (const b of bounds) {
      if (b && (end === null || compareBytes(b, end) < 0)) end = b;
    }
    const lo = latin1(start);
    const hi = end === null ? null : latin1(end);
    const sorted = this.#sortedKeys().slice();
    let i = 0;
    let j = sorted.length;
    while (i < j) {
      const m = (i + j) >>> 1;
      if (sorted[m]! < lo) i = m + 1;
      else j = m;
    }
    let n = 0;
    for (; i < sorted.length; i++) {
      const k = sorted[i]!;
      if (hi !== null && k >= hi) break;
      if (options.limit !== undefined && n >= options.limit) break;
      const r = this.#live(k, this.#wall());
      if (!r) continue;
      const cells = this.#visible(r.cells, options, this.#wall());
      if (cells.length === 0) continue;
      n++;
      yield { key: fromLatin1(k), cells };
      this.#assertOpen();
    }
  }

  /** Keys, values and a fixed overhead per row and cell. */
  approximateBytes(): number {
    return this.#bytes;
  }

  /** The middle key by row count; undefined under two rows. */
  splitKey(): Promise<Uint8Array | undefined> {
    const sorted = this.#sortedKeys();
    if (sorted.length < 2) return Promise.resolve(undefined);
    return Promise.resolve(fromLatin1(sorted[sorted.length >> 1]!));
  }

  /**
   * Copies the rows of `range` (deadlines included) into `target`, another
   * memory tablet of the same table; its clock moves past this one's.
   */
  copyTo(
    target: Tablet,
    range: KeyRange = this.range,
  ): Promise<{ entries: number; bytes: number }> {
    if (!(target instanceof MemoryTablet) || target === this) {
      return Promise.reject(
        new TabletError("bad_request", "the target must be a memory tablet"),
      );
    }
    const now = this.#wall();
    const picked: MemRow[] = [];
    let bytes = 0;
    const lo = latin1(range.start);
    const hi = range.end === null ? null : latin1(range.end);
    for (const [k, r] of this.#rows) {
      if (r.deadline !== 0 && r.deadline <= now) continue;
      if (k < lo || (hi !== null && k >= hi)) continue;
      picked.push({
        k,
        // Values copied too: `writeValue` overwrites them in place.
        cells: r.cells.map((c) => ({ ...c, value: c.value.slice() })),
        deadline: r.deadline,
      });
      bytes += rowBytes(r);
    }
    const entries = target.load(picked, this.#clock.last);
    return Promise.resolve({ entries, bytes });
  }

  /** Nothing to flush in memory. */
  flush(): Promise<void> {
    return Promise.resolve();
  }

  /** Nothing to compact in memory. */
  compact(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Refused: a memory tablet drops deleted and overwritten cells at once,
   * so it cannot answer a consistent read as of an earlier time (backups
   * of memory tables are not supported).
   */
  holdSnapshot(_asOf: number, _ms: number): Promise<void> {
    return Promise.reject(noSnapshots());
  }

  /** Closes after the `onClose` hook (the handover snapshot). */
  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#o.onClose?.(this);
    } finally {
      this.#closed = true;
    }
  }

  /** Closes without the hook: the data is dropped (a lost lease). */
  discard(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#o.onDiscard?.(this);
  }

  /** Whether the tablet is closed. */
  get closed(): boolean {
    return this.#closed;
  }
}

/** compareBytes of `len` bytes of `b` at `off` against `x`. */
function compareAt(b: Uint8Array, off: number, len: number, x: Uint8Array) {
  const n = Math.min(len, x.length);
  for (let i = 0; i < n; i++) {
    const d = b[off + i]! - x[i]!;
    if (d !== 0) return d;
  }
  return len - x.length;
}

function rowBytes(r: MemRow): number {
  let n = r.k.length + ROW_OVERHEAD;
  for (const c of r.cells) n += cellBytes(c);
  return n;
}

function noSnapshots(): TabletError {
  return new TabletError(
    "compacted",
    "a memory tablet keeps no earlier versions: consistent reads as of a time (and backups) are not supported in memory storage mode",
  );
}
