import { join } from "node:path";
import { z } from "zod";
import { syncDir, writeAll, writeAllSync } from "./atomic_file.ts";
import { DirLock } from "./dir_lock.ts";
import { GroupCommit } from "./group_commit.ts";
import { InlineSyncRule } from "./inline_sync_rule.ts";
import { allocateFile, canMapFiles, MappedFile } from "./mapped_file.ts";
import {
  decodeRecords,
  intactRecordAfter,
  RECORD_OVERHEAD_BYTES,
  scanRecords,
  writeRecord,
} from "./log_record.ts";
import { PositionedReader } from "./positioned_read.ts";
import { asStorageError, StorageError } from "./storage_error.ts";
import { type SyncPolicy, SyncPolicySchema } from "./sync_policy.ts";

/** Options of {@link SegmentedLog.open}. */
export interface SegmentedLogOptions {
  /** A segment is sealed and a new one started past this size (bytes, default 64 MiB). */
  segmentBytes?: number;
  /** When appends reach stable storage; default `"always"`. See {@link SyncPolicy}. */
  sync?: SyncPolicy;
  /** Largest record payload accepted (bytes, default 16 MiB). */
  maxRecordBytes?: number;
  /**
   * Zero-fill each segment to `segmentBytes` before appending into it
   * (default true). An `fdatasync` after a write that grows a file must
   * also commit the size change to the file system journal (a second device
   * flush); writes into already-allocated bytes need only the data flush,
   * which is what makes group commit cheap. The next segment is prepared in
   * the background. Costs writing each segment's bytes twice.
   */
  preallocate?: boolean;
  /**
   * Under a policy that does not wait for a sync (`"never"`,
   * `{ batchMs }`), with `preallocate`, write records into a shared
   * memory mapping of the current segment (default true; needs Linux and
   * the `ffi` permission, else records are written with `write`). A store
   * into the mapping is in the file's page cache once made, as a `write`
   * is: an acknowledged append survives `kill -9` either way, and a sync
   * covers both. Saves the system call per append.
   */
  mapped?: boolean;
  /**
   * Under `"always"`, run a batch's `fdatasync` on the calling thread
   * (blocking the event loop for the device's flush) instead of on the
   * runtime's thread pool (default false). Equally durable: the batch's
   * appends still resolve only after the sync that covers them. It saves
   * the hand-off per batch: a duplicated descriptor (`fcntl` + `close`),
   * two thread wake-ups and an event-loop wake-up; measured on the shared
   * 2-core VM, 40-45 µs of CPU per 7.5 KB write + sync instead of 85-95,
   * and less wall time (100-110 µs instead of 155-214). For a log whose
   * owner has nothing better to do during a sync (a chunkserver's journal,
   * on fast flushes): while a sync runs nothing else in the process runs.
   * After 8 syncs in a row over `inlineSyncMaxMs`, syncs go to the
   * thread pool (a slow device must not stall the process) until one is
   * fast again (see {@link InlineSyncRule}: one slow sync is the process
   * waiting for a CPU under load, not the device).
   */
  inlineSync?: boolean;
  /** Sync time (ms) over which a sync is slow: 8 slow in a row end {@link inlineSync} until a fast one (default 10). */
  inlineSyncMaxMs?: number;
}

const OptionsSchema = z.object({
  segmentBytes: z.number().int().min(1024).max(2 ** 31).default(64 * 2 ** 20),
  sync: SyncPolicySchema.default("always"),
  maxRecordBytes: z.number().int().min(1).max(2 ** 31).default(16 * 2 ** 20),
  preallocate: z.boolean().default(true),
  mapped: z.boolean().default(true),
  inlineSync: z.boolean().default(false),
  inlineSyncMaxMs: z.number().min(0).max(60_000).default(10),
});

/**
 * With `inlineSync`, a flush waits until no append has been submitted for
 * this many microtask turns (see {@link GroupCommit}).
 */
const INLINE_GATHER_TURNS = 8;

/** What {@link SegmentedLog.open} found and repaired. */
export interface LogRecoveryReport {
  /** Segment files found. */
  segments: number;
  /** Records kept. */
  records: number;
  /** Bytes cut from the tail of the last segment (a torn or corrupt tail). */
  droppedBytes: number;
  /** Records (complete or not) that began in the cut bytes, best effort. */
  droppedRecords: number;
  /** File name of the segment that was cut, or null. */
  truncatedSegment: string | null;
}

/** Indexes given to the records of one {@link SegmentedLog.append} call. */
export interface AppendResult {
  /** Index of the first record. */
  first: number;
  /** Index of the last record (`first - 1` for an empty append). */
  last: number;
}

/** Result of {@link SegmentedLog.compactPrefix}. */
export interface CompactResult {
  /** Segment files deleted. */
  removedSegments: number;
  /** Records deleted with them. */
  removedRecords: number;
  /** The log's first index afterwards. */
  firstIndex: number;
}

interface Segment {
  /** Index of its first record (from the file name). */
  first: number;
  /** Byte offset of each record. */
  offsets: number[];
  /** Bytes of valid records. */
  size: number;
  name: string;
  reader: PositionedReader | null;
}

const SEGMENT_SUFFIX = ".seg";
const SYNC_WRITE_MAX_BYTES = 256 * 1024;
/** Name prefix of zero-filled files waiting to become segments. */
const SPARE_PREFIX = ".spare-";
/**
 * Zeros are written a page at a time. The page cache keeps what one
 * `write` fills as one folio, and ext4 walks every block of a folio on
 * each later write into it: after 1 MiB writes of zeros, each small
 * record append into the segment cost 2.3–2.8 µs (Linux 6.18, ext4),
 * after 4 KiB writes 1.0 µs, as much as appending to a growing file.
 */
const ZERO_PAGE = new Uint8Array(4096);
/** Pages written synchronously between two turns of the event loop. */
const ZERO_PAGES_PER_TURN = 256;

/**
 * Writes `bytes` zeros at the file's position, a page per `write`
 * (synchronous: a page is a copy into the page cache, and 16,384 async
 * writes cost three times the CPU), yielding to the event loop every
 * {@link ZERO_PAGES_PER_TURN} pages (1 MiB, about 1.5 ms) so a segment
 * prepared in the background does not stall other work for its whole
 * 64 MiB.
 */
async function writeZeros(file: Deno.FsFile, bytes: number): Promise<void> {
  let pages = 0;
  while (bytes > 0) {
    const n = Math.min(bytes, ZERO_PAGE.length);
    writeAllSync(file, ZERO_PAGE.subarray(0, n));
    bytes -= n;
    if (++pages % ZERO_PAGES_PER_TURN === 0 && bytes > 0) {
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }
}

/**
 * Whether segments are mapped under these options (see `mapped`): they
 * are then preallocated with `fallocate` instead of written zeros.
 */
function mapsSegments(opts: z.infer<typeof OptionsSchema>): boolean {
  return opts.mapped && opts.preallocate && opts.sync !== "always" &&
    canMapFiles();
}

/**
 * Preallocates the file at `path` (open as `file`) to `bytes`: allocated
 * without writing when its segments are mapped (a mapped log syncs
 * rarely, so the journal commit of unwritten extents that zeros avoid
 * does not matter, and writing 64 MiB of zeros per segment, then syncing
 * them, held up the append that rolled for 0.1–0.3 s), else zero-filled
 * from the file position.
 */
async function preallocate(
  file: Deno.FsFile,
  path: string,
  bytes: number,
  opts: z.infer<typeof OptionsSchema>,
): Promise<void> {
  if (!(mapsSegments(opts) && allocateFile(path, bytes))) {
    await writeZeros(file, bytes - (await file.stat()).size);
  }
  await file.syncData();
}

/** Offset just past the last nonzero byte (0 when all are zero). */
function nonZeroEnd(bytes: Uint8Array): number {
  let i = bytes.length;
  while (i % 4 !== 0 && bytes[i - 1] === 0) i--;
  if (i % 4 === 0 && bytes.byteOffset % 4 === 0) {
    // Four bytes per step over the (long) zero-filled tail.
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset, i / 4);
    let w = words.length;
    while (w > 0 && words[w - 1] === 0) w--;
    i = w * 4;
  }
  while (i > 0 && bytes[i - 1] === 0) i--;
  return i;
}

/** File name of the segment whose first record has `index`. */
export function segmentName(index: number): string {
  return `${String(index).padStart(20, "0")}${SEGMENT_SUFFIX}`;
}

function parseSegmentName(name: string): number | null {
  const m = /^(\d{20})\.seg$/.exec(name);
  if (m === null) return null;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) && n >= 1 ? n : null;
}

function lastOf(seg: Segment): number {
  return seg.first + seg.offsets.length - 1;
}

/**
 * A write-ahead log split into segment files (the Raft log). Indexes start
 * at 1 and are contiguous; `firstIndex` moves up when a prefix is compacted.
 * An empty log has `lastIndex === firstIndex - 1`.
 *
 * Appends go through group commit: concurrent `append` calls share one
 * write and one `fdatasync`, and each resolves only after the sync that
 * covers it (under the default `"always"` policy). Records carry their
 * index and a CRC32C. On open, a torn tail of the last segment (a bad
 * record with no intact record after it) is cut; a bad record followed by
 * an intact one, or any bad record in a sealed segment, is damage to
 * acknowledged data and open throws `corrupt` naming the file and byte
 * (see {@link intactRecordAfter} for the rule).
 *
 * Snapshots (for the Raft layer): {@link beginSnapshot} seals the current
 * segment so later appends go to a fresh one; once a snapshot through index
 * `n` is saved, {@link compactPrefix}(n) deletes the whole segments it
 * covers. Only whole segments are deleted, so the log may keep a few
 * entries at or below `n`; it never drops one above `n`.
 *
 * The directory is locked ({@link DirLock}) while the log is open.
 */
export class SegmentedLog {
  /** The directory holding the segments. */
  readonly dir: string;
  /** What opening found and repaired. */
  readonly recovery: LogRecoveryReport;
  readonly #opts: z.infer<typeof OptionsSchema>;
  readonly #lock: DirLock;
  readonly #segments: Segment[];
  #writer: Deno.FsFile;
  #commit: GroupCommit<Uint8Array[], AppendResult>;
  #closing = false;
  #closed = false;
  #broken: StorageError | null = null;
  #syncTimer: ReturnType<typeof setTimeout> | null = null;
  #durable: number;
  #syncs = 0;
  /** Whether a batch's sync runs inline (see `inlineSync`). */
  readonly #inlineRule: InlineSyncRule;
  #inlineSyncs = 0;
  /** A zero-filled file being prepared to become the next segment. */
  #spare: Promise<string | null> | null = null;
  /** An append was written by the fast path in this turn (see `append`). */
  #burst = false;
  readonly #endBurst = () => {
    this.#burst = false;
  };
  /** Reused by the fast path to frame its records. */
  #scratch = new Uint8Array(4096);
  #scratchView = new DataView(this.#scratch.buffer);
  /**
   * The current segment mapped into memory (see the `mapped` option), or
   * null: records are then written with `write` at the file position.
   * While one is set, the file position is not kept up to date: a `write`
   * seeks to the segment's end first.
   */
  #map: MappedFile | null = null;
  #mapView: DataView | null = null;

  private constructor(
    dir: string,
    opts: z.infer<typeof OptionsSchema>,
    lock: DirLock,
    segments: Segment[],
    writer: Deno.FsFile,
    recovery: LogRecoveryReport,
  ) {
    this.dir = dir;
    this.#opts = opts;
    this.#lock = lock;
    this.#segments = segments;
    this.#writer = writer;
    this.recovery = recovery;
    this.#inlineRule = new InlineSyncRule(opts.inlineSyncMaxMs);
    // Inline syncs hold the loop: only appends made in this turn can join
    // a batch, and a burst of them may be queued a few microtasks apart
    // (one chunk's appends go through its serial queue).
    this.#commit = new GroupCommit(
      (batch) => this.#flush(batch),
      undefined,
      opts.inlineSync && opts.sync === "always" ? INLINE_GATHER_TURNS : 0,
    );
    this.#durable = this.lastIndex;
  }

  /**
   * Opens (or creates) the log in `dir`, locking the directory and
   * recovering the tail.
   *
   * @throws StorageError `locked` when another owner has the directory,
   *   `corrupt` when a record is damaged anywhere but in a torn tail (the
   *   message names the file and byte) or segments are not contiguous,
   *   `bad_argument` for invalid options, `io`.
   */
  static async open(
    dir: string,
    options: SegmentedLogOptions = {},
  ): Promise<SegmentedLog> {
    const parsed = OptionsSchema.safeParse(options);
    if (!parsed.success) {
      throw new StorageError(
        "bad_argument",
        `invalid log options: ${parsed.error.message}`,
      );
    }
    const opts = parsed.data;
    const lock = await DirLock.acquire(dir);
    try {
      const { segments, recovery } = await recover(dir, opts.maxRecordBytes);
      for await (const e of Deno.readDir(dir)) {
        if (e.isFile && e.name.startsWith(SPARE_PREFIX)) {
          await Deno.remove(join(dir, e.name));
        }
      }
      if (segments.length === 0) {
        const name = segmentName(1);
        await Deno.writeFile(join(dir, name), new Uint8Array(0), {
          createNew: true,
        });
        await syncDir(dir);
        segments.push({ first: 1, offsets: [], size: 0, name, reader: null });
      }
      const last = segments[segments.length - 1]!;
      const writer = await Deno.open(join(dir, last.name), {
        read: true,
        write: true,
      });
      if (opts.preallocate) {
        const fileSize = (await writer.stat()).size;
        if (fileSize < opts.segmentBytes) {
          await writer.seek(fileSize, Deno.SeekMode.Start);
          await preallocate(
            writer,
            join(dir, last.name),
            opts.segmentBytes,
            opts,
          );
        }
      }
      await writer.seek(last.size, Deno.SeekMode.Start);
      const log = new SegmentedLog(
        dir,
        opts,
        lock,
        segments,
        writer,
        recovery,
      );
      log.#mapCurrent((await writer.stat()).size);
      return log;
    } catch (e) {
      lock.release();
      throw asStorageError(e, `cannot open log ${dir}`);
    }
  }

  /** Index of the first record still in the log. */
  get firstIndex(): number {
    return this.#segments[0]!.first;
  }

  /** Index of the last record written (`firstIndex - 1` when empty). */
  get lastIndex(): number {
    return lastOf(this.#segments[this.#segments.length - 1]!);
  }

  /** Highest index known to be on stable storage (covered by an fsync). */
  get durableIndex(): number {
    return this.#durable;
  }

  /** `fdatasync` calls made so far (group commit makes it far fewer than appends). */
  get syncCount(): number {
    return this.#syncs;
  }

  /** Of {@link syncCount}, the batch syncs run inline (the `inlineSync` option). */
  get inlineSyncCount(): number {
    return this.#inlineSyncs;
  }

  /** Bytes of the records in the log (framing included), over every segment. */
  get byteSize(): number {
    let n = 0;
    for (const seg of this.#segments) n += seg.size;
    return n;
  }

  /** Number of segment files. */
  get segmentCount(): number {
    return this.#segments.length;
  }

  /**
   * Appends records after the last one. The bytes are read when the batch
   * is written: do not modify them until the promise settles.
   *
   * @returns the index range they received; resolves once durable per the
   *   sync policy.
   * @throws StorageError `too_large` for a record above `maxRecordBytes`,
   *   `bad_argument` for a non-byte record, `closed`, `io`.
   */
  append(records: readonly Uint8Array[]): Promise<AppendResult> {
    try {
      const r = this.appendNow(records);
      if (r !== undefined) return Promise.resolve(r);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#commit.submit(records.slice());
  }

  /**
   * {@link append} without a promise, when it can be done at once: under
   * a policy that does not wait for a sync, with nothing queued or in
   * flight, the records are in the file (the OS) when it returns, with
   * their index range. Returns undefined when the append would have to
   * wait (a sync policy of `"always"`, a queue, a segment roll): call
   * {@link append} then, which keeps index order.
   *
   * @throws StorageError as {@link append} rejects.
   */
  appendNow(records: readonly Uint8Array[]): AppendResult | undefined {
    this.#assertAccepting();
    if (!Array.isArray(records)) {
      throw new StorageError("bad_argument", "records must be an array");
    }
    for (const r of records) {
      if (!(r instanceof Uint8Array)) {
        throw new StorageError("bad_argument", "records must be Uint8Array");
      }
      if (r.length > this.#opts.maxRecordBytes) {
        throw new StorageError(
          "too_large",
          `record of ${r.length} bytes exceeds ${this.#opts.maxRecordBytes}`,
        );
      }
    }
    if (this.#commit.busy) return undefined;
    // Into the mapping: a store costs no system call, so every append
    // takes this path and none waits for a group-commit turn. What does
    // not fit the mapping is written as the unmapped log would.
    if (this.#map !== null) {
      return this.#storeNow(records) ?? this.#writeNow(records);
    }
    // With `write`: a lone append (none written earlier in this turn) is
    // written now, in the caller's turn, with no group-commit round trip;
    // appends that follow in the same turn go through group commit and
    // share one write.
    if (this.#opts.sync === "always" || this.#burst) return undefined;
    const r = this.#writeNow(records);
    if (r !== undefined) {
      this.#burst = true;
      queueMicrotask(this.#endBurst);
    }
    return r;
  }

  /**
   * Writes `records` into the current segment with one synchronous write,
   * or returns undefined when they would not fit it or are large (the
   * group-commit path rolls segments and writes large batches
   * asynchronously).
   */
  #writeNow(records: readonly Uint8Array[]): AppendResult | undefined {
    let bytes = 0;
    for (const r of records) bytes += RECORD_OVERHEAD_BYTES + r.length;
    const seg = this.#segments[this.#segments.length - 1]!;
    if (
      bytes === 0 || bytes > SYNC_WRITE_MAX_BYTES ||
      (seg.size > 0 && seg.size + bytes > this.#opts.segmentBytes)
    ) return undefined;
    if (this.#scratch.length < bytes) {
      this.#scratch = new Uint8Array(Math.max(bytes, 2 * this.#scratch.length));
      this.#scratchView = new DataView(this.#scratch.buffer);
    }
    const buf = this.#scratch;
    const first = seg.first + seg.offsets.length;
    let index = first;
    let off = 0;
    for (const r of records) {
      off = writeRecord(buf, off, index++, r, this.#scratchView);
    }
    try {
      // The file position is not kept while the segment is mapped.
      if (this.#map !== null) {
        this.#writer.seekSync(seg.size, Deno.SeekMode.Start);
      }
      // The scratch buffer is reused: the write copies it into the page cache.
      writeAllSync(this.#writer, buf.subarray(0, bytes));
    } catch (e) {
      throw this.#fail(e, "append failed");
    }
    off = seg.size;
    for (const r of records) {
      seg.offsets.push(off);
      off += RECORD_OVERHEAD_BYTES + r.length;
    }
    seg.size = off;
    this.#scheduleSync();
    return { first, last: index - 1 };
  }

  /**
   * Frames `records` straight into the mapped segment, or returns
   * undefined when they do not fit it (the group-commit path rolls to a
   * new segment).
   */
  #storeNow(records: readonly Uint8Array[]): AppendResult | undefined {
    const map = this.#map!.bytes;
    const view = this.#mapView!;
    const seg = this.#segments[this.#segments.length - 1]!;
    let bytes = 0;
    for (const r of records) bytes += RECORD_OVERHEAD_BYTES + r.length;
    const end = seg.size + bytes;
    if (
      bytes === 0 || end > map.length ||
      (seg.size > 0 && end > this.#opts.segmentBytes)
    ) return undefined;
    const first = seg.first + seg.offsets.length;
    let index = first;
    let off = seg.size;
    for (const r of records) {
      seg.offsets.push(off);
      off = writeRecord(map, off, index++, r, view);
    }
    seg.size = off;
    this.#scheduleSync();
    return { first, last: index - 1 };
  }

  /**
   * Maps the current segment (its first `size` bytes, the file's size)
   * when the options ask for it and the platform allows; otherwise
   * leaves records to `write`.
   */
  #mapCurrent(size: number): void {
    const o = this.#opts;
    if (!o.mapped || !o.preallocate || o.sync === "always") return;
    const seg = this.#segments[this.#segments.length - 1]!;
    // Only a preallocated segment: its blocks are written and synced, so
    // a store never needs new space (which would raise SIGBUS, not ENOSPC).
    if (size < o.segmentBytes) return;
    const map = MappedFile.open(join(this.dir, seg.name), size);
    if (map === undefined) return;
    this.#map = map;
    this.#mapView = new DataView(map.bytes.buffer);
  }

  /**
   * Unmaps the current segment (before it is truncated, closed or
   * deleted) and puts the file position at its end.
   */
  #unmap(): void {
    const map = this.#map;
    if (map === null) return;
    this.#map = null;
    this.#mapView = null;
    map.close();
    const seg = this.#segments[this.#segments.length - 1];
    if (seg !== undefined) this.#writer.seekSync(seg.size, Deno.SeekMode.Start);
  }

  /** Under a `{ batchMs }` policy, starts the timer of the next sync. */
  #scheduleSync(): void {
    const policy = this.#opts.sync;
    if (typeof policy === "object" && this.#syncTimer === null) {
      this.#syncTimer = setTimeout(() => {
        this.#syncTimer = null;
        this.sync().catch(() => {/* surfaced by the next operation */});
      }, policy.batchMs);
    }
  }

  /**
   * Reads records `[from, toExclusive)`, verifying each checksum.
   *
   * @throws StorageError `not_found` when `from` is below `firstIndex`
   *   (compacted), `bad_argument` when the range is past `lastIndex + 1` or
   *   reversed, `corrupt` when a record fails its checksum, `closed`.
   */
  read(from: number, toExclusive: number): Promise<Uint8Array[]> {
    try {
      return Promise.resolve(this.readSync(from, toExclusive));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Synchronous {@link read} (one `pread` per segment touched). */
  readSync(from: number, toExclusive: number): Uint8Array[] {
    this.#assertOpen();
    if (!Number.isSafeInteger(from) || !Number.isSafeInteger(toExclusive)) {
      throw new StorageError("bad_argument", "read range must be integers");
    }
    if (from < this.firstIndex) {
      throw new StorageError(
        "not_found",
        `index ${from} was compacted (first index is ${this.firstIndex})`,
      );
    }
    if (toExclusive < from || toExclusive > this.lastIndex + 1) {
      throw new StorageError(
        "bad_argument",
        `read [${from}, ${toExclusive}) is outside [${this.firstIndex}, ${
          this.lastIndex + 1
        })`,
      );
    }
    const out: Uint8Array[] = [];
    let next = from;
    let s = this.#segmentOf(from);
    while (next < toExclusive) {
      const seg = this.#segments[s]!;
      const stop = Math.min(toExclusive, lastOf(seg) + 1);
      const a = next - seg.first;
      const b = stop - seg.first; // exclusive
      const start = seg.offsets[a]!;
      const end = b < seg.offsets.length ? seg.offsets[b]! : seg.size;
      seg.reader ??= PositionedReader.open(join(this.dir, seg.name));
      const bytes = seg.reader.readAt(start, end - start);
      const recs = decodeRecords(bytes, next, stop - next);
      if (!Array.isArray(recs)) {
        throw new StorageError(
          "corrupt",
          `record in ${seg.name} at byte ${
            start + recs.badAt
          } fails its checksum`,
        );
      }
      for (const r of recs) out.push(r);
      next = stop;
      s++;
    }
    return out;
  }

  /**
   * Deletes records `from` and after (a Raft log conflict). Waits for
   * appends submitted earlier.
   *
   * @throws StorageError `bad_argument` when `from` is below `firstIndex`
   *   or above `lastIndex + 1`, `closed`, `io`.
   */
  truncateSuffix(from: number): Promise<void> {
    return this.#exclusive(async () => {
      if (
        !Number.isSafeInteger(from) || from < this.firstIndex ||
        from > this.lastIndex + 1
      ) {
        throw new StorageError(
          "bad_argument",
          `truncateSuffix(${from}) outside [${this.firstIndex}, ${
            this.lastIndex + 1
          }]`,
        );
      }
      if (from === this.lastIndex + 1) return;
      // The segment is truncated below: no mapping may cover it. The rest
      // of it is written with `write` (it is no longer preallocated).
      this.#unmap();
      this.#writer.close();
      // Newest first: a crash part-way leaves a shorter but contiguous log.
      while (
        this.#segments.length > 1 &&
        this.#segments[this.#segments.length - 1]!.first >= from
      ) {
        const seg = this.#segments.pop()!;
        seg.reader?.close();
        await Deno.remove(join(this.dir, seg.name));
      }
      const last = this.#segments[this.#segments.length - 1]!;
      const keep = from - last.first;
      const size = keep < last.offsets.length ? last.offsets[keep]! : last.size;
      this.#writer = await Deno.open(join(this.dir, last.name), {
        read: true,
        write: true,
      });
      await this.#writer.truncate(size);
      await this.#writer.syncData();
      await syncDir(this.dir);
      await this.#writer.seek(size, Deno.SeekMode.Start);
      last.offsets.length = Math.min(keep, last.offsets.length);
      last.size = size;
      this.#durable = Math.min(this.#durable, this.lastIndex);
    });
  }

  /**
   * Seals the current segment so that later appends go to a fresh one
   * (step one of taking a snapshot). No-op when the current segment is
   * empty.
   *
   * @returns the index the fresh segment starts at: once a snapshot through
   *   `returned - 1` or later is saved, every older segment can be deleted.
   */
  beginSnapshot(): Promise<number> {
    return this.#exclusive(async () => {
      const last = this.#segments[this.#segments.length - 1]!;
      if (last.offsets.length > 0) await this.#roll(this.lastIndex + 1);
      return this.lastIndex + 1;
    });
  }

  /**
   * Deletes whole segments whose records are all `<= upTo` (step three of a
   * snapshot: call it only after a snapshot through `upTo` is saved). The
   * last segment always stays. Oldest files go first, so a crash part-way
   * leaves a contiguous log.
   *
   * Asserts the coverage invariant: when it deletes anything, afterwards
   * `firstIndex <= upTo + 1`, so the snapshot plus the log still cover
   * every index from the beginning. An older snapshot removes nothing.
   *
   * @throws StorageError `bad_argument` when `upTo` is above `lastIndex`
   *   (use {@link reset} after installing a snapshot ahead of the log),
   *   `closed`, `io`.
   */
  compactPrefix(upTo: number): Promise<CompactResult> {
    return this.#exclusive(async () => {
      if (!Number.isSafeInteger(upTo) || upTo < 0 || upTo > this.lastIndex) {
        throw new StorageError(
          "bad_argument",
          `compactPrefix(${upTo}) is above the last index ${this.lastIndex}`,
        );
      }
      let removedSegments = 0;
      let removedRecords = 0;
      while (
        this.#segments.length > 1 && lastOf(this.#segments[0]!) <= upTo
      ) {
        const seg = this.#segments[0]!;
        seg.reader?.close();
        seg.reader = null;
        await Deno.remove(join(this.dir, seg.name));
        this.#segments.shift();
        removedSegments++;
        removedRecords += seg.offsets.length;
      }
      if (removedSegments > 0) await syncDir(this.dir);
      if (removedSegments > 0 && this.firstIndex > upTo + 1) {
        throw new StorageError(
          "corrupt",
          `compaction would leave a gap: snapshot covers through ${upTo}, log starts at ${this.firstIndex}`,
        );
      }
      return { removedSegments, removedRecords, firstIndex: this.firstIndex };
    });
  }

  /**
   * Discards every record and restarts the log at `nextIndex` (after a
   * snapshot through `nextIndex - 1` was installed from a leader). A crash
   * part-way can leave a prefix of the old records; call reset again.
   *
   * @throws StorageError `bad_argument`, `closed`, `io`.
   */
  reset(nextIndex: number): Promise<void> {
    return this.#exclusive(async () => {
      if (!Number.isSafeInteger(nextIndex) || nextIndex < 1) {
        throw new StorageError("bad_argument", `reset(${nextIndex})`);
      }
      this.#unmap();
      this.#writer.close();
      while (this.#segments.length > 0) {
        const seg = this.#segments.pop()!;
        seg.reader?.close();
        await Deno.remove(join(this.dir, seg.name));
      }
      const name = segmentName(nextIndex);
      this.#writer = await Deno.open(join(this.dir, name), {
        read: true,
        write: true,
        createNew: true,
      });
      await syncDir(this.dir);
      this.#segments.push({
        first: nextIndex,
        offsets: [],
        size: 0,
        name,
        reader: null,
      });
      this.#durable = this.lastIndex;
    });
  }

  /** Forces everything written so far to stable storage, whatever the policy. */
  sync(): Promise<void> {
    return this.#exclusive(async () => {
      const last = this.lastIndex;
      await this.#writer.syncData();
      this.#syncs++;
      this.#durable = last;
    });
  }

  /**
   * Waits for pending appends, syncs, closes files and releases the lock.
   * Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closing) return await this.#commit.idle();
    this.#closing = true;
    await this.#commit.exclusive(async () => {
      this.#closed = true;
      if (this.#syncTimer !== null) clearTimeout(this.#syncTimer);
      this.#syncTimer = null;
      try {
        await this.#dropSpare();
        if (this.#broken === null) await this.#writer.syncData();
      } finally {
        this.#unmap();
        this.#writer.close();
        for (const seg of this.#segments) {
          seg.reader?.close();
          seg.reader = null;
        }
        this.#lock.release();
      }
    });
  }

  #assertAccepting(): void {
    if (this.#closing) throw new StorageError("closed", "the log is closed");
    this.#assertOpen();
  }

  #assertOpen(): void {
    if (this.#closed) throw new StorageError("closed", "the log is closed");
    if (this.#broken !== null) throw this.#broken;
  }

  #exclusive<V>(task: () => Promise<V>): Promise<V> {
    try {
      this.#assertAccepting();
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#commit.exclusive(async () => {
      this.#assertOpen();
      try {
        return await task();
      } catch (e) {
        if (e instanceof StorageError) throw e;
        throw this.#fail(e, "log maintenance failed");
      }
    });
  }

  /** A failed write leaves the file in an unknown state: stop, reopen recovers. */
  #fail(e: unknown, what: string): StorageError {
    const err = asStorageError(e, `${what}; reopen the log to recover`);
    this.#broken ??= err;
    return err;
  }

  #segmentOf(index: number): number {
    let lo = 0;
    let hi = this.#segments.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.#segments[mid]!.first <= index) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  async #roll(first: number): Promise<void> {
    // Sealing always syncs, whatever the policy: a sealed segment must be
    // whole, so damage found in one later is corruption, not a torn tail.
    // Its preallocated zeros go first, so sealed segments end exactly at
    // their last record.
    const sealed = this.#segments[this.#segments.length - 1]!;
    // A store into a mapping past a file's end raises SIGBUS: unmap first.
    this.#unmap();
    await this.#writer.truncate(sealed.size);
    await this.#writer.syncData();
    this.#durable = this.lastIndex;
    this.#writer.close();
    const name = segmentName(first);
    const path = join(this.dir, name);
    const spare = this.#spare === null ? null : await this.#spare;
    this.#spare = null;
    if (spare !== null) {
      await Deno.rename(spare, path);
      this.#writer = await Deno.open(path, { read: true, write: true });
    } else {
      this.#writer = await Deno.open(path, {
        read: true,
        write: true,
        createNew: true,
      });
      if (this.#opts.preallocate) {
        await preallocate(
          this.#writer,
          path,
          this.#opts.segmentBytes,
          this.#opts,
        );
        await this.#writer.seek(0, Deno.SeekMode.Start);
      }
    }
    await syncDir(this.dir);
    this.#segments.push({ first, offsets: [], size: 0, name, reader: null });
    if (this.#opts.preallocate) {
      this.#mapCurrent((await this.#writer.stat()).size);
      this.#spare = this.#prepareSpare();
    }
  }

  /** Zero-fills a spare segment file in the background; null on failure. */
  async #prepareSpare(): Promise<string | null> {
    const path = join(
      this.dir,
      `${SPARE_PREFIX}${
        crypto.getRandomValues(new Uint32Array(1))[0]!.toString(16)
      }`,
    );
    let f: Deno.FsFile | undefined;
    try {
      f = await Deno.open(path, { write: true, createNew: true });
      await preallocate(f, path, this.#opts.segmentBytes, this.#opts);
      return path;
    } catch {
      await Deno.remove(path).catch(() => {});
      return null;
    } finally {
      f?.close();
    }
  }

  /** Waits for a spare in preparation and deletes it. */
  async #dropSpare(): Promise<void> {
    const spare = this.#spare === null ? null : await this.#spare;
    this.#spare = null;
    if (spare !== null) await Deno.remove(spare).catch(() => {});
  }

  async #flush(batch: Uint8Array[][]): Promise<AppendResult[]> {
    this.#assertOpen();
    try {
      const results: AppendResult[] = [];
      let seg = this.#segments[this.#segments.length - 1]!;
      let next = this.lastIndex + 1;
      let pending: Uint8Array[] = [];
      let pendingBytes = 0;
      let pendingOffsets: number[] = [];
      const writePending = async () => {
        if (pendingBytes === 0) return;
        const buf = new Uint8Array(pendingBytes);
        let off = 0;
        let index = seg.first + seg.offsets.length;
        const view = new DataView(buf.buffer);
        for (const p of pending) off = writeRecord(buf, off, index++, p, view);
        const map = this.#map;
        if (map !== null && seg.size + buf.length <= map.bytes.length) {
          map.bytes.set(buf, seg.size);
        } else {
          // Past the mapped bytes (an oversized record): the file position
          // is not kept while mapped.
          if (map !== null) {
            this.#writer.seekSync(seg.size, Deno.SeekMode.Start);
          }
          // A small write only copies into the page cache: doing it
          // synchronously saves a thread-pool round trip per batch. Large
          // batches are written asynchronously so the event loop keeps going.
          if (buf.length <= SYNC_WRITE_MAX_BYTES) {
            writeAllSync(this.#writer, buf);
          } else await writeAll(this.#writer, buf);
        }
        for (const o of pendingOffsets) seg.offsets.push(o);
        seg.size += pendingBytes;
        pending = [];
        pendingBytes = 0;
        pendingOffsets = [];
      };
      for (const records of batch) {
        const first = next;
        for (const r of records) {
          const size = RECORD_OVERHEAD_BYTES + r.length;
          const used = seg.size + pendingBytes;
          if (used > 0 && used + size > this.#opts.segmentBytes) {
            await writePending();
            await this.#roll(next);
            seg = this.#segments[this.#segments.length - 1]!;
          }
          pendingOffsets.push(seg.size + pendingBytes);
          pending.push(r);
          pendingBytes += size;
          next++;
        }
        results.push({ first, last: next - 1 });
      }
      await writePending();
      const policy = this.#opts.sync;
      if (policy === "always") {
        const last = this.lastIndex;
        await this.#syncBatch();
        this.#syncs++;
        this.#durable = last;
      } else this.#scheduleSync();
      return results;
    } catch (e) {
      if (e instanceof StorageError && e.code !== "io") throw e;
      throw this.#fail(e, "append failed");
    }
  }

  /**
   * A batch's `fdatasync`: inline (see the `inlineSync` option) while
   * syncs have been fast, else on the thread pool.
   */
  async #syncBatch(): Promise<void> {
    const t0 = performance.now();
    if (this.#opts.inlineSync && this.#inlineRule.inline) {
      this.#writer.syncDataSync();
      this.#inlineSyncs++;
    } else await this.#writer.syncData();
    this.#inlineRule.record(performance.now() - t0);
  }
}

async function recover(
  dir: string,
  maxRecordBytes: number,
): Promise<{ segments: Segment[]; recovery: LogRecoveryReport }> {
  const found: Array<{ first: number; name: string }> = [];
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile) continue;
    const first = parseSegmentName(entry.name);
    if (first !== null) found.push({ first, name: entry.name });
  }
  found.sort((a, b) => a.first - b.first);
  const recovery: LogRecoveryReport = {
    segments: found.length,
    records: 0,
    droppedBytes: 0,
    droppedRecords: 0,
    truncatedSegment: null,
  };
  const segments: Segment[] = [];
  for (let i = 0; i < found.length; i++) {
    const { first, name } = found[i]!;
    const prev = segments[segments.length - 1];
    if (prev !== undefined && lastOf(prev) + 1 !== first) {
      throw new StorageError(
        "corrupt",
        `log segments are not contiguous: ${prev.name} ends at ${
          lastOf(prev)
        } but ${name} starts at ${first}`,
      );
    }
    // One pread of the whole file: several times faster than Deno.readFile.
    const reader = PositionedReader.open(join(dir, name));
    let bytes: Uint8Array;
    try {
      bytes = reader.readAt(0, (await Deno.stat(join(dir, name))).size);
    } finally {
      reader.close();
    }
    const scan = scanRecords(bytes, first, maxRecordBytes);
    const isLast = i === found.length - 1;
    // Zeros after the last record are preallocated space, not lost data.
    const dataEnd = scan.stop === null ? scan.end : nonZeroEnd(bytes);
    if (scan.stop !== null && dataEnd <= scan.end) {
      recovery.records += scan.offsets.length;
      segments.push({
        first,
        offsets: scan.offsets,
        size: scan.end,
        name,
        reader: null,
      });
      continue;
    }
    if (scan.stop !== null) {
      if (!isLast) {
        throw new StorageError(
          "corrupt",
          `sealed segment ${
            join(dir, name)
          } has a ${scan.stop} record at byte ${scan.end} of ${bytes.length}; refusing to drop acknowledged records`,
        );
      }
      const bad = first + scan.offsets.length;
      const after = intactRecordAfter(
        bytes.subarray(0, dataEnd),
        scan.end,
        bad + 1,
        maxRecordBytes,
      );
      if (after !== null) {
        throw new StorageError(
          "corrupt",
          `log segment ${
            join(dir, name)
          }: record ${bad} at byte ${scan.end} is damaged but record ${
            bad + 1
          } after it (byte ${after}) is intact, so this is corruption, not a torn write; refusing to drop acknowledged records`,
        );
      }
      // Cut the damaged bytes: zero them (keeping preallocated space).
      const f = await Deno.open(join(dir, name), { write: true });
      try {
        await f.seek(scan.end, Deno.SeekMode.Start);
        await writeZeros(f, dataEnd - scan.end);
        await f.syncData();
      } finally {
        f.close();
      }
      recovery.droppedBytes = dataEnd - scan.end;
      recovery.droppedRecords = scanRecords(
        bytes.subarray(0, dataEnd),
        first,
        maxRecordBytes,
      ).droppedRecords;
      recovery.truncatedSegment = name;
    }
    recovery.records += scan.offsets.length;
    segments.push({
      first,
      offsets: scan.offsets,
      size: scan.end,
      name,
      reader: null,
    });
  }
  return { segments, recovery };
}
