import { join } from "node:path";
import type { SyncPolicy } from "@strata/storage";
import { z } from "zod";
import { Arena } from "./arena.ts";
import { BlockCache } from "./block_cache.ts";
import { hashKey } from "./bloom.ts";
import { compareBytes, prefixEnd } from "./bytes.ts";
import type { CommitLog } from "./commit_log.ts";
import type { FileStore } from "./file_store.ts";
import { LocalCommitLog } from "./local_commit_log.ts";
import { LocalFileStore } from "./local_file_store.ts";
import { isLsmError, LsmError } from "./lsm_error.ts";
import {
  loadManifest,
  type Manifest,
  MANIFEST_NAME,
  type ManifestTable,
  saveManifest,
} from "./manifest.ts";
import { type Entry, Memtable, type Value } from "./memtable.ts";
import { MemtableFilter } from "./memtable_filter.ts";
import { LsmCursor, type StoredEntry } from "./lsm_cursor.ts";
import { ArrayCursor, type EntryCursor, MergeCursor } from "./merge.ts";
import type { PrefixExtractor } from "./prefix_extractor.ts";
import { type KeyClip, SSTable } from "./sstable.ts";
import { SSTableBuilder } from "./sstable_builder.ts";
import { decodeBatch, encodeBatch } from "./write_batch.ts";

/** Options of {@link LsmStore.open}. */
export interface LsmStoreOptions {
  /** Where table files and the manifest go (default: `<dir>/tables` on local disk). */
  files?: FileStore;
  /** The commit log (default: a local SegmentedLog in `<dir>/log`); the store closes it. */
  log?: CommitLog;
  /**
   * Table ids start at least here (default 1). A new owner of a store on
   * shared storage passes a range of its own (its fencing epoch × 2^24) so
   * a table written late by a fenced predecessor never takes its name.
   */
  firstTableId?: number;
  /** Flush the memtable to an SSTable past this many bytes (default 4 MiB). */
  memtableBytes?: number;
  /** SSTable data block size (default 4096). */
  blockBytes?: number;
  /** Block cache budget in bytes (default 8 MiB). */
  blockCacheBytes?: number;
  /** Local commit log sync policy (default `"always"`: acknowledged = fsynced). */
  sync?: SyncPolicy;
  /** Merge all SSTables into one run when there are this many (default 8). */
  compactionTrigger?: number;
  /** Largest SSTable a compaction writes before starting the next (default 32 MiB). */
  tableBytes?: number;
  /** Bloom filter bits per key (default 10). */
  bloomBitsPerKey?: number;
  /**
   * Tables written from now on also hold a Bloom filter of their keys'
   * prefixes, and a cursor with a `prefix` skips the tables whose filter
   * lacks that prefix's {@link PrefixExtractor.prefixOf}. Tables written
   * without it (or under another name) are read as before.
   */
  prefixExtractor?: PrefixExtractor;
  /**
   * Called when a merging compaction starts (one covers every table, so
   * nothing older survives elsewhere); the filter it returns sees each
   * live entry in key order and returns false to drop it (the tables app
   * drops deleted, surplus and expired versions this way).
   */
  compactionFilter?: () => CompactionFilter;
  /**
   * Called when a memtable is frozen for a flush; the filter it returns
   * (none: keep everything) sees each of the memtable's entries in key
   * order, tombstones excepted, and returns false to leave it out of the
   * table, as RocksDB's flush drops overwritten entries no snapshot
   * needs. Unlike a compaction's, it sees only the memtable, so it may
   * drop only what older tables cannot bring back (the tables app: cell
   * versions made dead by newer ones in the same memtable). Called and
   * run in one turn of the event loop.
   */
  flushFilter?: () => CompactionFilter | undefined;
  /**
   * When the store is new (no manifest yet), its first manifest names
   * these tables of sibling stores, as another store's
   * {@link LsmStore.shareRange} gave them: the store starts with that
   * data without copying it. Ignored when the store exists.
   */
  shared?: readonly SharedTable[];
  /**
   * Called when a memtable is frozen for a flush; the entries it returns
   * are added to that memtable, so the table holds them, without going
   * through the commit log (the table is where they first become
   * durable). The tables app writes its clock mark this way instead of
   * with every write.
   */
  onFlush?: () => readonly Entry[];
  /** Sees each entry replayed from the commit log by `open`, in log order. */
  onReplay?: (key: Uint8Array, value: Value) => void;
}

/**
 * A table of a sibling store, read through a key range (see
 * {@link LsmStore.shareRange}); it stays that store's file, never
 * deleted by the stores that share it.
 */
export interface SharedTable {
  /** The sibling store that wrote the file (its directory's name). */
  store: string;
  /** The file's name in that store. */
  name: string;
  /** Its table id there. */
  id: number;
  /** Only keys `>= start` are read. */
  start?: Uint8Array;
  /** Only keys `< end` are read. */
  end?: Uint8Array;
}

/** Decides, during a compaction, whether an entry is kept. */
export type CompactionFilter = (key: Uint8Array, value: Uint8Array) => boolean;

const OptionsSchema = z.object({
  // At most 1 GiB: the memtable's arena addresses 4,096 chunks (at least
  // about 4 GiB), and one memtable waits for its flush while the next fills.
  memtableBytes: z.number().int().min(1).max(2 ** 30).default(4 * 2 ** 20),
  blockBytes: z.number().int().min(64).default(4096),
  blockCacheBytes: z.number().int().min(0).default(8 * 2 ** 20),
  compactionTrigger: z.number().int().min(2).default(8),
  tableBytes: z.number().int().min(1024).default(32 * 2 ** 20),
  bloomBitsPerKey: z.number().int().min(1).max(64).default(10),
  firstTableId: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER / 2)
    .default(1),
});

/** A range scan: keys in `[start, end)` with `prefix`, at most `limit`. */
export interface ScanOptions {
  /** Inclusive lower bound. */
  start?: Uint8Array;
  /** Exclusive upper bound. */
  end?: Uint8Array;
  /** Only keys starting with these bytes. */
  prefix?: Uint8Array;
  /** At most this many entries. */
  limit?: number;
}

/** A scan copies out at most this many entries, or about this many bytes, at a time. */
const SCAN_BATCH_ENTRIES = 64;
const SCAN_BATCH_BYTES = 64 * 1024;

/** Largest key and value accepted (bytes). */
export const MAX_KEY_BYTES = 64 * 1024;
export const MAX_VALUE_BYTES = 16 * 2 ** 20;

/** Counters for tests and benchmarks. */
export interface LsmStats {
  memtableBytes: number;
  tables: number;
  tableBytes: number;
  /** Tables read from sibling stores (shared by a split or merge). */
  sharedTables: number;
  flushes: number;
  compactions: number;
  cacheHits: number;
  cacheMisses: number;
  cacheBytes: number;
  logRecordsReplayed: number;
}

/**
 * A sorted key/value engine for one tablet (a log-structured merge tree):
 * writes go to a commit log ({@link CommitLog}, group commit) and then a
 * sorted memtable; a full memtable is flushed to an immutable SSTable
 * (minor compaction); reads merge memtable and SSTables newest first;
 * deletes are tombstones; when SSTables pile up a merging compaction
 * rewrites them into one run without deleted or overwritten entries.
 * Reopening loads the SSTables named by the manifest and replays the log
 * records they do not cover.
 */
export class LsmStore {
  #files: FileStore;
  #log: CommitLog;
  #cache: BlockCache;
  #opts: z.infer<typeof OptionsSchema>;
  #mem = new Memtable();
  /** Where commit records are carved. */
  #arena = new Arena();
  /**
   * Where values returned by `get` and a cursor's transient bounds are
   * carved (small chunks: a value kept by a caller keeps its chunk).
   */
  #out = new Arena(16 * 1024);
  /** The memtable being flushed, read between `#mem` and the tables. */
  #imm: Memtable | null = null;
  /** Prefix filters of `#mem` and `#imm` (with a prefix extractor). */
  #memFilter: MemtableFilter | undefined;
  #immFilter: MemtableFilter | undefined;
  /** Live tables, newest first. */
  #tables: SSTable[] = [];
  #manifest: Manifest;
  /** Index of the last log record applied to `#mem`. */
  #applied: number;
  /** Writes whose append is awaited (not yet applied to `#mem`). */
  #waiting = 0;
  /** Writes between their append's start and their apply's end (close waits for them). */
  #inFlight = 0;
  #idle: PromiseWithResolvers<void> | undefined;
  /** Background flushes and compactions, one at a time, in order. */
  #job: Promise<void> = Promise.resolve();
  /**
   * A flush the memtable's size asked for is scheduled or running (until
   * the manifest names its table): writers that fill the next memtable
   * wait for it.
   */
  #flushing = false;
  #failed: unknown = undefined;
  #filter: (() => CompactionFilter) | undefined;
  #flushFilter: (() => CompactionFilter | undefined) | undefined;
  #onFlush: (() => readonly Entry[]) | undefined;
  #prefixer: PrefixExtractor | undefined;
  #closed = false;
  /** Where each shared (sibling) table comes from; own tables are absent. */
  #origin = new Map<SSTable, ManifestTable>();
  #flushes = 0;
  #compactions = 0;
  #replayed = 0;

  private constructor(
    files: FileStore,
    log: CommitLog,
    opts: z.infer<typeof OptionsSchema>,
    manifest: Manifest,
  ) {
    this.#files = files;
    this.#log = log;
    this.#opts = opts;
    this.#cache = new BlockCache(opts.blockCacheBytes);
    this.#manifest = manifest;
    this.#applied = manifest.logIndex;
  }

  /**
   * Opens (or creates) the store in `dir`: the commit log is
   * `options.log` (default a local log in `<dir>/log`), tables and
   * manifest go to `options.files` (default `<dir>/tables`). Table files
   * the manifest does not name (left by a crash during a flush or
   * compaction) are deleted.
   *
   * @throws LsmError `corrupt` for a damaged manifest or table;
   *   StorageError `locked` when another process has the log open.
   */
  static async open(
    dir: string,
    options: LsmStoreOptions = {},
  ): Promise<LsmStore> {
    const {
      files: given,
      log: givenLog,
      sync,
      compactionFilter,
      flushFilter,
      shared,
      onFlush,
      onReplay,
      prefixExtractor,
      ...rest
    } = options;
    const opts = OptionsSchema.parse(rest);
    const files = given ?? await LocalFileStore.open(join(dir, "tables"));
    const log = givenLog ?? await LocalCommitLog.open(join(dir, "log"), {
      sync,
      segmentBytes: Math.max(1 << 20, Math.min(opts.memtableBytes, 64 << 20)),
    });
    try {
      const manifest = await loadManifest(files);
      manifest.nextId = Math.max(manifest.nextId, opts.firstTableId);
      if (
        shared !== undefined && shared.length > 0 &&
        await files.readWhole(MANIFEST_NAME) === undefined
      ) {
        // Named before anything else happens, so a crash after the open
        // leaves a store that holds the shared data.
        manifest.tables = shared.map(toManifest);
        await saveManifest(files, manifest);
      }
      const store = new LsmStore(files, log, opts, manifest);
      store.#filter = compactionFilter;
      store.#flushFilter = flushFilter;
      store.#onFlush = onFlush;
      store.#prefixer = prefixExtractor;
      store.#memFilter = store.#newFilter();
      await store.#recover(onReplay);
      return store;
    } catch (e) {
      await log.close();
      throw e;
    }
  }

  async #recover(
    onReplay: ((key: Uint8Array, value: Value) => void) | undefined,
  ): Promise<void> {
    const live = new Set(
      this.#manifest.tables.filter((t) => t.store === undefined).map((t) =>
        t.name
      ),
    );
    for (const name of await this.#files.list()) {
      if (name.endsWith(".sst") && !live.has(name)) {
        await this.#files.delete(name);
      }
    }
    let sharedIds = 0;
    for (const t of this.#manifest.tables) {
      if (t.store === undefined) {
        this.#tables.push(
          await SSTable.open(
            t.id,
            t.name,
            await this.#files.open(t.name),
            this.#cache,
          ),
        );
        continue;
      }
      if (this.#files.openSibling === undefined) {
        throw new LsmError(
          "corrupt",
          `${MANIFEST_NAME} names ${t.store}/${t.name}, but this file store has no siblings`,
        );
      }
      // Block cache keys are table ids: a shared table gets a negative one,
      // unlike any own table's (the sibling numbers its files alike).
      const table = await SSTable.open(
        --sharedIds,
        t.name,
        await this.#files.openSibling(t.store, t.name),
        this.#cache,
        fromManifest(t),
      );
      this.#origin.set(table, t);
      this.#tables.push(table);
    }
    const last = await this.#log.recover(this.#manifest.logIndex, (i, r) => {
      for (const m of decodeBatch(r, `commit log record ${i}`)) {
        this.#mem.set(m.key, m.value);
        this.#memFilter?.add(m.key);
        onReplay?.(m.key, m.value);
      }
      this.#replayed++;
    });
    this.#applied = Math.max(this.#applied, last);
  }

  /** Sets `key` to `value`; resolves once durable per the sync policy. */
  put(key: Uint8Array, value: Uint8Array): Promise<void> {
    return this.write([{ key, value }]);
  }

  /** Deletes `key` (writes a tombstone). */
  delete(key: Uint8Array): Promise<void> {
    return this.write([{ key, value: null }]);
  }

  /**
   * Applies a batch of puts (`value` bytes) and deletes (`value: null`)
   * atomically: one commit log record, so after a crash all or none of it.
   *
   * @throws LsmError `bad_argument`, `closed`, `failed`; the commit log's
   *   own error when its append fails (then nothing was applied).
   */
  write(batch: readonly Entry[]): Promise<void> {
    // Not an async function: an append the log makes at once (sync off)
    // is applied in the caller's turn and answered with a resolved promise.
    let record: Uint8Array;
    const views: Entry[] = [];
    try {
      this.#assertWritable();
      checkBatch(batch);
      // The record is a copy of the caller's bytes, made before the first
      // await so later changes to them are not seen; the memtable copies
      // the mutations from it (the views) into its own chunks.
      record = encodeBatch(batch, views, this.#arena);
      // Only while no earlier append waits to be applied: the memtable
      // takes writes in log order.
      if (this.#waiting === 0 && this.#log.appendNow !== undefined) {
        const r = this.#log.appendNow([record]);
        if (r !== undefined) {
          this.#applyViews(views, r.last);
          return this.#afterApply();
        }
      }
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#writeWaiting(record, views);
  }

  /**
   * A write whose append waits (a sync, a queue): applied when it
   * resolves. A `then` chain, not an async function: every put of a
   * tablet server waits here for its group commit, and the async
   * function's state and its two awaits were ~0.9 KB of garbage a put.
   */
  #writeWaiting(record: Uint8Array, views: Entry[]): Promise<void> {
    this.#waiting++;
    this.#inFlight++;
    let appended: Promise<{ last: number }>;
    try {
      appended = this.#log.append([record]);
    } catch (e) {
      this.#waiting--;
      this.#writeDone();
      return Promise.reject(e);
    }
    return appended.then(({ last }) => {
      this.#waiting--;
      let after: Promise<void>;
      try {
        // The log resolves appends in index order, so the memtable sees
        // writes in log order and `#applied` tells exactly what it holds.
        this.#applyViews(views, last);
        after = this.#afterApply();
      } catch (e) {
        this.#writeDone();
        throw e;
      }
      if (after === RESOLVED) {
        this.#writeDone();
        return;
      }
      return after.finally(() => this.#writeDone());
    }, (e) => {
      this.#waiting--;
      this.#writeDone();
      throw e;
    });
  }

  /** A write that waited is over (applied or failed). */
  #writeDone(): void {
    if (--this.#inFlight === 0) this.#idle?.resolve();
  }

  #applyViews(views: readonly Entry[], last: number): void {
    const filter = this.#memFilter;
    for (const m of views) {
      this.#mem.set(m.key, m.value);
      filter?.add(m.key);
    }
    this.#applied = last;
  }

  /** After a write is applied: a full memtable is frozen and flushed. */
  #afterApply(): Promise<void> {
    if (this.#mem.bytes < this.#opts.memtableBytes) return RESOLVED;
    return this.#memtableFull();
  }

  async #memtableFull(): Promise<void> {
    // Back-pressure: at most one memtable waits for its flush (one whose
    // table reads already see counts until the manifest names it).
    if (this.#flushing) await this.#job;
    if (this.#mem.bytes >= this.#opts.memtableBytes && !this.#flushing) {
      this.#flushing = true;
      // Failures are kept in #failed and reported by the next write.
      this.#schedule(() => this.#flush()).catch(() => {});
    }
  }

  /**
   * The value of `key`, or undefined when absent or deleted.
   *
   * @throws LsmError `corrupt` when a table block fails its checksum, `closed`.
   */
  get(key: Uint8Array): Promise<Uint8Array | undefined> {
    // Not an async function: a read answered from memory (memtable, Bloom
    // filters, cached blocks) returns an already resolved promise and
    // starts no async machinery.
    try {
      this.#assertOpen();
      let v: Value | undefined = this.#mem.get(key);
      if (v === undefined && this.#imm !== null) v = this.#imm.get(key);
      if (v !== undefined) {
        return Promise.resolve(v === null ? undefined : this.#out.copy(v));
      }
      const tables = this.#tables;
      const hash = hashKey(key);
      for (let i = 0; i < tables.length; i++) {
        const r = tables[i]!.lookup(key, hash);
        if (r === undefined) continue;
        if (!(r instanceof Promise)) {
          return Promise.resolve(r === null ? undefined : this.#out.copy(r));
        }
        // A block must be read: from here on a compaction may finish while
        // we wait, so the tables still to consult are referenced until done.
        return this.#getSlow(key, tables.slice(i), r);
      }
      return Promise.resolve(undefined);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  async #getSlow(
    key: Uint8Array,
    tables: SSTable[],
    first: Promise<Value | undefined>,
  ): Promise<Uint8Array | undefined> {
    for (const t of tables) t.ref();
    try {
      let r = await first;
      for (let i = 1; r === undefined && i < tables.length; i++) {
        r = await tables[i]!.lookup(key);
      }
      return r === null || r === undefined ? undefined : this.#out.copy(r);
    } finally {
      for (const t of tables) t.unref();
    }
  }

  /**
   * Live entries in key order within the range (tombstones and shadowed
   * versions merged away), newest value of each key.
   *
   * @throws LsmError `bad_argument` for a bad range or limit, `corrupt`, `closed`.
   */
  async *scan(
    options: ScanOptions = {},
  ): AsyncGenerator<{ key: Uint8Array; value: Uint8Array }> {
    const cursor = this.cursor(options);
    try {
      const batch: StoredEntry[] = [];
      let done = false;
      while (!done) {
        // Entries are gathered in batches and copied out of blocks and
        // memtables into one buffer per batch: one allocation per batch
        // instead of two per entry.
        let bytes = 0;
        while (batch.length < SCAN_BATCH_ENTRIES && bytes < SCAN_BATCH_BYTES) {
          // Awaited only when a block must be read.
          let e = cursor.next();
          if (e instanceof Promise) e = await e;
          if (e === undefined) {
            done = true;
            break;
          }
          batch.push(e);
          bytes += e.key.length + e.value.length;
        }
        const buf = new Uint8Array(bytes);
        const out: { key: Uint8Array; value: Uint8Array }[] = [];
        let o = 0;
        for (const e of batch) {
          buf.set(e.key, o);
          const key = buf.subarray(o, o += e.key.length);
          buf.set(e.value, o);
          out.push({ key, value: buf.subarray(o, o += e.value.length) });
        }
        batch.length = 0;
        for (const e of out) yield e;
      }
    } finally {
      cursor.close();
    }
  }

  /**
   * The live entries of a range, as {@link scan} gives them, but without
   * copies and without an async generator: a {@link LsmCursor} whose
   * `next` returns a promise only when a block must be read, and whose
   * keys and values are views into stored bytes (copy what you keep). With
   * `gather` (for short ranges read at once, such as one row; needs an
   * end or a prefix), the memtables' entries in the range are collected
   * when the cursor is made instead of iterating a copy-on-write clone.
   * Tables whose key range misses the range are not consulted. Close the
   * cursor when stopping early (the end of the range closes it).
   *
   * @throws LsmError `bad_argument` for a bad range or limit, `closed`.
   */
  cursor(options: ScanOptions & { gather?: boolean } = {}): LsmCursor {
    this.#assertOpen();
    const { prefix, limit = Infinity } = options;
    let start = options.start;
    let end = options.end;
    if (limit !== Infinity && (!Number.isSafeInteger(limit) || limit < 0)) {
      throw new LsmError(
        "bad_argument",
        "limit must be a non-negative integer",
      );
    }
    if (
      start !== undefined && end !== undefined && compareBytes(start, end) > 0
    ) {
      throw new LsmError("bad_argument", "scan start is after its end");
    }
    if (prefix !== undefined) {
      if (start === undefined || compareBytes(start, prefix) < 0) {
        start = prefix;
      }
      const pe = prefixEnd(prefix, this.#out);
      if (
        pe !== undefined && (end === undefined || compareBytes(pe, end) < 0)
      ) {
        end = pe;
      }
    }
    // The prefix's extracted prefix, hashed once for every filter.
    const px = this.#prefixer;
    const pp = px !== undefined && prefix !== undefined
      ? px.prefixOf(prefix)
      : undefined;
    const hash = pp === undefined ? -1 : hashKey(pp);
    const tables = this.#tablesFor(start, end, hash);
    // A memtable whose prefix filter rules the prefix out is not searched.
    const mem = hash < 0 || this.#memFilter?.mayContain(hash) !== false;
    const imm = this.#imm !== null &&
      (hash < 0 || this.#immFilter?.mayContain(hash) !== false);
    // Only the memtable has the range (recent data, or no table's prefix
    // filter has the prefix): its entries are read without a merge.
    const lone = !imm && tables.length === 0;
    const sources: EntryCursor[] = [];
    if (options.gather === true && start !== undefined && end !== undefined) {
      const mine = mem ? this.#mem.range(start, end) : [];
      if (lone) {
        // In order, one per key and within the range already.
        return new LsmCursor(
          new ArrayCursor(mine),
          undefined,
          undefined,
          [],
          limit,
        );
      }
      sources.push(new ArrayCursor(mine));
      if (imm) sources.push(new ArrayCursor(this.#imm!.range(start, end)));
    } else {
      if (lone && mem) {
        return new LsmCursor(this.#mem.walk(start), end, prefix, [], limit);
      }
      if (mem) sources.push(this.#mem.walk(start));
      if (imm) sources.push(this.#imm!.walk(start));
    }
    for (const t of tables) {
      t.ref();
      sources.push(t.iterate(start, end));
    }
    return new LsmCursor(new MergeCursor(sources), end, prefix, tables, limit);
  }

  /**
   * The live tables a cursor over `[start, end)` (open when undefined)
   * reads: those whose key range meets it, less those whose prefix filter
   * rules out `hash`, the {@link hashKey} of the cursor's prefix's
   * extracted prefix (every key the cursor may return starts with it;
   * negative when there is none).
   */
  #tablesFor(
    start: Uint8Array | undefined,
    end: Uint8Array | undefined,
    hash: number,
  ): SSTable[] {
    const out: SSTable[] = [];
    const name = hash < 0 ? undefined : this.#prefixer!.name;
    for (const t of this.#tables) {
      if (!covers(t, start, end)) continue;
      if (name !== undefined && !t.mayContainPrefix(name, hash)) continue;
      out.push(t);
    }
    return out;
  }

  /** A prefix filter for a new memtable (none without an extractor). */
  #newFilter(): MemtableFilter | undefined {
    const x = this.#prefixer;
    return x === undefined
      ? undefined
      : new MemtableFilter(x, this.#opts.memtableBytes);
  }

  /** Flushes the memtable to an SSTable now (minor compaction) and waits. */
  async flush(): Promise<void> {
    this.#assertWritable();
    await this.#schedule(() => this.#flush());
  }

  /** Merges every SSTable into one run now (merging compaction) and waits. */
  async compact(): Promise<void> {
    this.#assertWritable();
    await this.#schedule(() => this.#compact());
  }

  /** Counters: sizes, flushes, compactions, cache hits. */
  stats(): LsmStats {
    return {
      memtableBytes: this.#mem.bytes + (this.#imm?.bytes ?? 0),
      tables: this.#tables.length,
      tableBytes: this.#tables.reduce((s, t) => s + t.clippedSize, 0),
      sharedTables: this.#origin.size,
      flushes: this.#flushes,
      compactions: this.#compactions,
      cacheHits: this.#cache.hits,
      cacheMisses: this.#cache.misses,
      cacheBytes: this.#cache.bytes,
      logRecordsReplayed: this.#replayed,
    };
  }

  /**
   * References to this store's data in `[start, end)`, for a new sibling
   * store to start from ({@link LsmStoreOptions.shared}) without copying
   * it: flushes the memtable, then names each live table (its own as
   * files of `store`, this store's name among its siblings; shared ones
   * as they are), clipped to the range. The caller stops writes first
   * and keeps this store from compacting while the sibling uses them
   * (a tablet split retires the parent).
   *
   * @throws LsmError `bad_argument` when writes arrived meanwhile, `closed`, `failed`.
   */
  async shareRange(
    store: string,
    start?: Uint8Array,
    end?: Uint8Array,
  ): Promise<SharedTable[]> {
    await this.flush();
    if (this.#mem.size > 0 || this.#imm !== null) {
      throw new LsmError(
        "bad_argument",
        "writes arrived while the store was shared",
      );
    }
    const out: SharedTable[] = [];
    for (const t of this.#tables) {
      const o = this.#origin.get(t);
      let lo = start;
      let hi = end;
      const c = t.clip;
      if (
        c?.start !== undefined &&
        (lo === undefined || compareBytes(c.start, lo) > 0)
      ) {
        lo = c.start;
      }
      if (
        c?.end !== undefined &&
        (hi === undefined || compareBytes(c.end, hi) < 0)
      ) {
        hi = c.end;
      }
      // Nothing of the table in the range: not named.
      if (
        (lo !== undefined && hi !== undefined && compareBytes(lo, hi) >= 0) ||
        (lo !== undefined && compareBytes(t.largest, lo) < 0) ||
        (hi !== undefined && compareBytes(t.smallest, hi) >= 0) ||
        t.entries === 0
      ) continue;
      out.push({
        store: o?.store ?? store,
        name: t.name,
        id: o?.id ?? t.id,
        ...(lo !== undefined ? { start: lo } : {}),
        ...(hi !== undefined ? { end: hi } : {}),
      });
    }
    return out;
  }

  /** The live SSTables, newest first (for verification and tests). */
  get tables(): readonly SSTable[] {
    return this.#tables;
  }

  /**
   * Refuses new writes, waits for the writes already on their way into the
   * log (each ends acknowledged or failed: a store handed to another owner
   * leaves none in doubt behind it) and for background work, then closes
   * the log (everything acknowledged is in it) and the tables. Does not
   * flush: reopening replays the log.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#inFlight > 0) {
      this.#idle = Promise.withResolvers<void>();
      await this.#idle.promise;
    }
    await this.#job;
    await this.#log.close();
    for (const t of this.#tables) t.retire();
    this.#tables = [];
  }

  #schedule(task: () => Promise<void>): Promise<void> {
    const run = this.#job.then(async () => {
      if (this.#failed !== undefined) throw this.#failed;
      try {
        await task();
      } catch (e) {
        this.#failed ??= e;
        throw e;
      }
    });
    this.#job = run.catch(() => {});
    return run;
  }

  async #flush(): Promise<void> {
    if (this.#mem.size === 0) return;
    const imm = this.#mem;
    const upTo = this.#applied;
    this.#imm = imm;
    this.#immFilter = this.#memFilter;
    this.#mem = new Memtable();
    this.#memFilter = this.#newFilter();
    for (const e of this.#onFlush?.() ?? []) {
      imm.set(e.key, e.value);
      this.#immFilter?.add(e.key);
    }
    const b = this.#builder();
    // In this turn, with the walk: what the filter decides holds for it.
    const keep = this.#flushFilter?.();
    for (const e of imm.entries()) {
      // A tombstone stays: it hides the key in older tables.
      if (keep !== undefined && e.value !== null && !keep(e.key, e.value)) {
        continue;
      }
      b.add(e.key, e.value);
    }
    const now = this.#writeTableNow(b);
    if (now !== undefined) {
      // Written and opened in this turn (a local disk): reads see the
      // table from the next one on, as after a flush on its own thread,
      // whether or not the caller ever yields to the event loop. It holds
      // what the frozen memtable holds, so the memtable goes too. The
      // manifest names it only once it is durable, and the log keeps its
      // records until then: a crash before that replays them.
      this.#tables = [now.table, ...this.#tables];
      this.#imm = null;
      this.#immFilter = undefined;
      await now.sync();
    } else {
      const table = await this.#writeTable(b);
      this.#tables = [table, ...this.#tables];
    }
    await this.#commit(upTo);
    this.#imm = null;
    this.#immFilter = undefined;
    this.#flushing = false;
    this.#flushes++;
    // Log records up to `upTo` are in the table now; whole old segments go.
    await this.#log.compactPrefix(upTo);
    if (this.#tables.length >= this.#opts.compactionTrigger) {
      await this.#compact();
    }
  }

  async #compact(): Promise<void> {
    const inputs = this.#tables;
    // One table is rewritten only when a filter may drop something from
    // it, or when it is shared: the rewrite drops the reference.
    if (
      inputs.length < (this.#filter === undefined ? 2 : 1) &&
      !inputs.some((t) => this.#origin.has(t))
    ) return;
    const outputs: SSTable[] = [];
    let b = this.#builder();
    const keep = this.#filter?.();
    // Every table takes part, so nothing older can be shadowed by a
    // tombstone any more: tombstones and overwritten versions are dropped.
    const merged = new MergeCursor(inputs.map((t) => t.iterate()));
    while (true) {
      let e = merged.next();
      if (e instanceof Promise) e = await e;
      if (e === undefined) break;
      if (e.value === null) continue;
      if (keep !== undefined && !keep(e.key, e.value)) continue;
      b.add(e.key, e.value);
      if (b.estimatedBytes >= this.#opts.tableBytes) {
        outputs.push(await this.#writeTable(b));
        b = this.#builder();
      }
    }
    if (b.count > 0) outputs.push(await this.#writeTable(b));
    // Jobs run one at a time, so no flush added tables meanwhile.
    this.#tables = outputs;
    await this.#commit(this.#manifest.logIndex);
    for (const t of inputs) {
      // A shared table stays its store's file: only the reference goes.
      if (this.#origin.delete(t)) t.retire();
      else t.retire(() => void this.#files.delete(t.name).catch(() => {}));
    }
    this.#compactions++;
  }

  #builder(): SSTableBuilder {
    return new SSTableBuilder({
      blockBytes: this.#opts.blockBytes,
      bloomBitsPerKey: this.#opts.bloomBitsPerKey,
      ...(this.#prefixer !== undefined
        ? { prefixExtractor: this.#prefixer }
        : {}),
    });
  }

  async #writeTable(b: SSTableBuilder): Promise<SSTable> {
    const id = this.#manifest.nextId++;
    const name = `${String(id).padStart(10, "0")}.sst`;
    const bytes = b.finish();
    const f = await this.#files.create(name);
    try {
      await f.append(bytes);
      await f.sync();
    } finally {
      await f.close();
    }
    return await SSTable.open(
      id,
      name,
      await this.#files.open(name),
      this.#cache,
    );
  }

  /**
   * {@link #writeTable} in the caller's turn when the file store writes
   * without waiting ({@link FileStore.writeNow}): the table, open for
   * reads, and the `sync` that makes it durable (to be awaited before a
   * manifest names it). Undefined for a store that must wait.
   */
  #writeTableNow(
    b: SSTableBuilder,
  ): { table: SSTable; sync(): Promise<void> } | undefined {
    const files = this.#files;
    if (files.writeNow === undefined) return undefined;
    const id = this.#manifest.nextId++;
    const name = `${String(id).padStart(10, "0")}.sst`;
    const written = files.writeNow(name, b.finish());
    let table: SSTable;
    try {
      table = SSTable.openNow(id, name, written.file, this.#cache);
    } catch (e) {
      written.file.close();
      void written.sync().catch(() => {});
      throw e;
    }
    return { table, sync: () => written.sync() };
  }

  async #commit(logIndex: number): Promise<void> {
    this.#manifest = {
      tables: this.#tables.map((t) =>
        this.#origin.get(t) ?? { id: t.id, name: t.name }
      ),
      logIndex,
      nextId: this.#manifest.nextId,
    };
    await saveManifest(this.#files, this.#manifest);
  }

  #assertOpen(): void {
    if (this.#closed) throw new LsmError("closed", "the store is closed");
  }

  #assertWritable(): void {
    this.#assertOpen();
    if (this.#failed !== undefined) {
      throw new LsmError(
        "failed",
        `a background flush or compaction failed: ${
          isLsmError(this.#failed) ? this.#failed.message : String(this.#failed)
        }`,
        { cause: this.#failed },
      );
    }
  }
}

/** The table's key range meets `[start, end)` (either bound open when undefined). */
const RESOLVED: Promise<void> = Promise.resolve();

/** @throws LsmError `bad_argument` for a key or value that is not bytes or too long. */
function checkBatch(batch: readonly Entry[]): void {
  for (const m of batch) {
    if (!(m.key instanceof Uint8Array) || m.key.length > MAX_KEY_BYTES) {
      throw new LsmError(
        "bad_argument",
        `key must be bytes, at most ${MAX_KEY_BYTES}`,
      );
    }
    if (
      m.value !== null &&
      (!(m.value instanceof Uint8Array) || m.value.length > MAX_VALUE_BYTES)
    ) {
      throw new LsmError(
        "bad_argument",
        `value must be bytes or null, at most ${MAX_VALUE_BYTES}`,
      );
    }
  }
}

function covers(
  t: SSTable,
  start: Uint8Array | undefined,
  end: Uint8Array | undefined,
): boolean {
  return (end === undefined || compareBytes(t.smallest, end) < 0) &&
    (start === undefined || compareBytes(t.largest, start) >= 0);
}

const toHex = (b: Uint8Array) =>
  Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const fromHex = (h: string) =>
  Uint8Array.from(h.match(/../g) ?? [], (x) => parseInt(x, 16));

function toManifest(t: SharedTable): ManifestTable {
  return {
    id: t.id,
    name: t.name,
    store: t.store,
    ...(t.start !== undefined ? { start: toHex(t.start) } : {}),
    ...(t.end !== undefined ? { end: toHex(t.end) } : {}),
  };
}

function fromManifest(t: ManifestTable): KeyClip {
  return {
    ...(t.start !== undefined ? { start: fromHex(t.start) } : {}),
    ...(t.end !== undefined ? { end: fromHex(t.end) } : {}),
  };
}
