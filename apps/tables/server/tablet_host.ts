/**
 * The tablets one server has open, by table and range, and the fencing of
 * the master's orders: an order carrying a fencing token lower than one
 * already seen comes from a deposed master and is refused.
 */
import { compareBytes } from "@strata/lsm";
import { fromB64, type TableSchemaJson } from "../shared/wire.ts";
import type { TabletRecord } from "../shared/kv_layout.ts";
import type { PortRange, TabletOpener, TabletPort } from "./tablet_port.ts";
import type { SharedTablet } from "../tablet/types.ts";
import { LoadMeter, type LoadMeterOptions } from "./load_meter.ts";

/** An open tablet. */
export interface OpenTablet {
  record: TabletRecord;
  range: PortRange;
  schema: TableSchemaJson;
  tablet: TabletPort;
  /** Set while the tablet is being split: writes are refused (not applied). */
  frozen: boolean;
  /** Writes being applied now. */
  writes: number;
  /** Resolved when `writes` drops to 0. */
  drained?: PromiseWithResolvers<void>;
  /** Its load since it was opened here (for the master's split-by-load). */
  load: LoadMeter;
}

/** What a split or merge carried into its new tablets. */
export interface Carried {
  /** Entries copied (a tablet that cannot share its files). */
  entries: number;
  /** SSTable references made (a tablet that shares its files). */
  tables: number;
}

/** The part of `a` inside `b` (they overlap). */
function clip(a: PortRange, b: PortRange): PortRange {
  const start = compareBytes(a.start, b.start) >= 0 ? a.start : b.start;
  const end = a.end === null
    ? b.end
    : b.end === null || compareBytes(a.end, b.end) <= 0
    ? a.end
    : b.end;
  return { start, end };
}

/** A write on `t` is over: the last one lets a waiting freeze go on. */
function wrote(t: OpenTablet): void {
  if (--t.writes === 0) t.drained?.resolve();
}

/** Why the host refused an order. */
export class HostError extends Error {
  /** `stale_master` (lower token) or `opening` (being opened or closed). */
  readonly code: "stale_master" | "busy";
  /** @param code why; @param message what happened. */
  constructor(code: "stale_master" | "busy", message: string) {
    super(message);
    this.name = "HostError";
    this.code = code;
  }
}

/** Whether `key` falls in `range`. */
export function inRange(key: Uint8Array, range: PortRange): boolean {
  return compareBytes(key, range.start) >= 0 &&
    (range.end === null || compareBytes(key, range.end) < 0);
}

/** The tablets a server serves. */
export class TabletHost {
  #tablets = new Map<string, OpenTablet>();
  /** Tablets being opened or closed (their ids). */
  #busy = new Set<string>();
  #highestToken = 0;
  /** Pending compactions of tablets that still read their sources' files. */
  #compactions = new Map<string, ReturnType<typeof setTimeout>>();

  /**
   * @param open opens a tablet's storage.
   * @param loadOptions how each open tablet's load is measured.
   * @param compactSharedMs a tablet opened while it still reads SSTables
   *   of the tablets it was split or merged from is compacted after this
   *   long (0: never), so it drops those references and the sweep can
   *   delete their stores.
   */
  constructor(
    private readonly open: TabletOpener,
    private readonly loadOptions: LoadMeterOptions = {},
    private readonly compactSharedMs = 60_000,
  ) {}

  /** The highest master fencing token seen. */
  get masterToken(): number {
    return this.#highestToken;
  }

  /** Every open tablet. */
  list(): OpenTablet[] {
    return [...this.#tablets.values()];
  }

  /** The open tablet of `table` holding row `key`, if any. */
  find(table: string, key: Uint8Array): OpenTablet | undefined {
    for (const t of this.#tablets.values()) {
      if (t.record.table === table && inRange(key, t.range)) return t;
    }
    return undefined;
  }

  /**
   * Checks an order's fencing token and remembers the highest.
   * @throws HostError `stale_master`.
   */
  fence(token: number): void {
    if (token < this.#highestToken) {
      throw new HostError(
        "stale_master",
        `fencing token ${token} is older than ${this.#highestToken}: the order comes from a deposed master`,
      );
    }
    this.#highestToken = token;
  }

  /**
   * Opens the tablet of `record` (no-op when already open with the same range).
   * @throws HostError; whatever opening the storage throws.
   */
  async openTablet(
    record: TabletRecord,
    schema: TableSchemaJson,
    token: number,
  ): Promise<OpenTablet> {
    this.fence(token);
    const have = this.#tablets.get(record.id);
    if (
      have && have.record.start === record.start &&
      have.record.end === record.end
    ) {
      have.record = record;
      return have;
    }
    if (this.#busy.has(record.id)) {
      throw new HostError(
        "busy",
        `tablet ${record.id} is being opened or closed`,
      );
    }
    this.#busy.add(record.id);
    try {
      if (have) {
        this.#tablets.delete(record.id);
        await have.tablet.close();
      }
      const range: PortRange = {
        start: fromB64(record.start),
        end: record.end === null ? null : fromB64(record.end),
      };
      const tablet = await this.open(record.dir, schema, range);
      const t: OpenTablet = {
        record,
        range,
        schema,
        tablet,
        frozen: false,
        writes: 0,
        load: new LoadMeter(this.loadOptions),
      };
      this.#tablets.set(record.id, t);
      if ((tablet.sharedTables?.() ?? 0) > 0 && this.compactSharedMs > 0) {
        this.#compactLater(t);
      }
      return t;
    } finally {
      this.#busy.delete(record.id);
    }
  }

  /**
   * Compacts `t` after `compactSharedMs` if it is still open here and not
   * frozen: a frozen tablet is being split or merged, and one whose files
   * were shared must never compact (that would delete them).
   */
  #compactLater(t: OpenTablet): void {
    const id = t.record.id;
    clearTimeout(this.#compactions.get(id));
    this.#compactions.set(
      id,
      setTimeout(() => {
        this.#compactions.delete(id);
        if (this.#tablets.get(id) !== t || t.frozen) return;
        t.tablet.compact().catch(() => {
          // Closed meanwhile, or storage trouble: the next open retries.
        });
      }, this.compactSharedMs),
    );
  }

  /** Closes tablet `id` (no-op when not open). @throws HostError `stale_master`. */
  async closeTablet(id: string, token: number): Promise<boolean> {
    this.fence(token);
    const t = this.#tablets.get(id);
    if (!t) return false;
    this.#tablets.delete(id);
    clearTimeout(this.#compactions.get(id));
    this.#compactions.delete(id);
    // A tablet another server has claimed meanwhile (GFS fence) cannot
    // flush on close; it is closed for this server all the same.
    await t.tablet.close().catch(() => {});
    return true;
  }

  /**
   * Runs a write on `t` unless it is frozen (then returns undefined
   * without running it); a freeze waits for running writes.
   */
  write<T>(
    t: OpenTablet,
    work: () => Promise<T>,
  ): Promise<T | undefined> {
    // Not an async function: every put passes here (one promise, not an
    // async function's state and its await).
    if (t.frozen) return Promise.resolve(undefined);
    t.writes++;
    let p: Promise<T>;
    try {
      p = work();
    } catch (e) {
      wrote(t);
      return Promise.reject(e);
    }
    return p.then((v) => {
      wrote(t);
      return v;
    }, (e) => {
      wrote(t);
      throw e;
    });
  }

  /** Freezes `t` for writes and waits until the running ones are done. */
  async freeze(t: OpenTablet): Promise<void> {
    t.frozen = true;
    if (t.writes > 0) {
      t.drained = Promise.withResolvers<void>();
      await t.drained.promise;
    }
  }

  /** The open tablet `id`. */
  get(id: string): OpenTablet | undefined {
    return this.#tablets.get(id);
  }

  /**
   * Makes two new tablets `[start, key)` and `[key, end)` stored under
   * `left` and `right` from frozen tablet `t`, then closes them (the
   * master opens them once the split is in METADATA). A tablet that can
   * share ({@link TabletPort.shareRange}) is flushed and each half starts
   * as references to its SSTables, clipped to the half: no data is
   * copied, so the time does not grow with the tablet's size. Otherwise
   * (a memory tablet) the stored cells are copied
   * ({@link TabletPort.copyTo}: timestamps and deleted versions kept, the
   * halves' clocks raised above the parent's) and flushed.
   * @returns the entries copied and the SSTable references made.
   */
  async copySplit(
    t: OpenTablet,
    key: Uint8Array,
    left: string,
    right: string,
  ): Promise<Carried> {
    const out = { entries: 0, tables: 0 };
    for (
      const [dir, range] of [
        [left, { start: t.range.start, end: key }],
        [right, { start: key, end: t.range.end }],
      ] as const
    ) {
      await this.#carry([t], dir, range, out);
    }
    return out;
  }

  /**
   * Makes one new tablet `[left.start, right.end)` stored under `into`
   * from frozen adjacent tablets `left` and `right` (sharing their
   * SSTables, or copying, as {@link copySplit} does), then closes it:
   * the master opens it once the merge is in METADATA.
   * @returns the entries copied and the SSTable references made.
   */
  async copyMerge(
    left: OpenTablet,
    right: OpenTablet,
    into: string,
  ): Promise<Carried> {
    const out = { entries: 0, tables: 0 };
    const range = { start: left.range.start, end: right.range.end };
    await this.#carry([left, right], into, range, out);
    return out;
  }

  /** Creates tablet `dir` serving `range` from the data of `sources`. */
  async #carry(
    sources: OpenTablet[],
    dir: string,
    range: PortRange,
    out: Carried,
  ): Promise<void> {
    const folder = (d: string) => d.slice(0, d.lastIndexOf("/") + 1);
    const canShare = sources.every((s) =>
      s.tablet.shareRange !== undefined &&
      folder(s.record.dir) === folder(dir)
    );
    const shared: SharedTablet[] = [];
    if (canShare) {
      for (const s of sources) {
        const store = s.record.dir.slice(folder(s.record.dir).length);
        const part = await s.tablet.shareRange!(store, clip(s.range, range));
        shared.push(part);
        out.tables += part.tables.length;
      }
    }
    const target = await this.open(dir, sources[0]!.schema, range, {
      bulkLoad: true,
      ...(canShare ? { shared } : {}),
    });
    try {
      if (!canShare) {
        for (const s of sources) {
          out.entries += (await s.tablet.copyTo(target, range)).entries;
        }
      }
      await target.flush();
    } finally {
      await target.close();
    }
  }

  /**
   * Closes every tablet (the session is lost, or the server stops). A
   * memory tablet is discarded, not closed: no handover snapshot, since
   * another server may already own it.
   */
  async closeAll(): Promise<void> {
    const all = [...this.#tablets.values()];
    this.#tablets.clear();
    for (const timer of this.#compactions.values()) clearTimeout(timer);
    this.#compactions.clear();
    await Promise.allSettled(all.map((t) => {
      const m = t.tablet as { discard?: () => void };
      return m.discard ? Promise.resolve(m.discard()) : t.tablet.close();
    }));
  }
}
