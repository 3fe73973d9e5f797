import { join } from "node:path";
import { crc32c } from "@strata/codec";
import { z } from "zod";
import { syncDir, writeAll, writeFileAtomic } from "./atomic_file.ts";
import { DirLock } from "./dir_lock.ts";
import { GroupCommit } from "./group_commit.ts";
import {
  FLAG_DELETED,
  NEEDLE_FLAGS_OFFSET,
  needleBytes,
  type NeedleChecksum,
  parseNeedle,
  writeNeedle,
} from "./needle.ts";
import {
  decodeCheckpoint,
  encodeCheckpoint,
  type NeedleLocation,
} from "./needle_index_checkpoint.ts";
import { NeedleIndex } from "./needle_index.ts";
import { PositionedReader } from "./positioned_read.ts";
import { asStorageError, StorageError } from "./storage_error.ts";
import { type SyncPolicy, SyncPolicySchema } from "./sync_policy.ts";

/** Volume file name inside the volume's directory. */
export const VOLUME_FILE = "volume.dat";
/** Index checkpoint file name. */
export const INDEX_FILE = "volume.idx";
const COMPACT_FILE = "volume.dat.compact";
const SUPERBLOCK_BYTES = 16;
const SUPERBLOCK_MAGIC = "HVOL";
const VOLUME_VERSION = 1;
const SCAN_CHUNK = 8 * 2 ** 20;

/** Options of {@link NeedleVolume.open}. */
export interface NeedleVolumeOptions {
  /** The volume turns read-only rather than grow past this (bytes, default 4 GiB). */
  maxBytes?: number;
  /** Largest needle data accepted (bytes, default 64 MiB). */
  maxNeedleBytes?: number;
  /** When puts and deletes reach stable storage (default `"always"`). */
  sync?: SyncPolicy;
  /** Writes between background index checkpoints (default 4096). */
  checkpointEvery?: number;
  /**
   * Needle checksum of a volume created by this open (an existing volume
   * keeps the one in its superblock). Default `"crc32c"`, like every other
   * strata file; the codec computes it natively (SSE4.2) for inputs of
   * 512 bytes and more. `"crc32"` (zlib's native CRC-32) remains for
   * volumes written with it (see {@link NeedleChecksum}).
   */
  checksum?: NeedleChecksum;
}

const OptionsSchema = z.object({
  maxBytes: z.number().int().min(4096).max(2 ** 50).default(4 * 2 ** 30),
  maxNeedleBytes: z.number().int().min(1).max(2 ** 31).default(64 * 2 ** 20),
  sync: SyncPolicySchema.default("always"),
  checkpointEvery: z.number().int().min(1).default(4096),
  checksum: z.enum(["crc32c", "crc32"]).default("crc32c"),
});

/** What {@link NeedleVolume.open} found. */
export interface VolumeRecoveryReport {
  /** Whether an index checkpoint was used, or why not. */
  checkpoint: "used" | "none" | string;
  /** Offset the needle scan started at. */
  scannedFrom: number;
  /** Needles found by the scan (past the checkpoint). */
  scannedNeedles: number;
  /** Bytes cut from a torn or corrupt tail. */
  droppedBytes: number;
  /** A leftover compaction file was removed. */
  removedCompactionFile: boolean;
}

/** Result of {@link NeedleVolume.compact}. */
export interface VolumeCompactReport {
  /** Volume bytes before. */
  beforeBytes: number;
  /** Volume bytes after. */
  afterBytes: number;
  /** Live needles copied. */
  liveNeedles: number;
}

type WriteOp =
  | {
    kind: "put";
    key: number;
    altKey: number;
    cookie: number;
    data: Uint8Array;
  }
  | { kind: "delete"; key: number; altKey: number };

type Outcome =
  | { ok: true; value: boolean | NeedleLocation }
  | { ok: false; error: StorageError };

/** A needle's name in messages; built only on error paths (gets are hot). */
function needleName(key: number, altKey: number): string {
  return `${key}:${altKey}`;
}

/** Key of the per-batch overlay of index changes. */
function indexKey(key: number, altKey: number): string {
  return `${key}:${altKey}`;
}

function checkKeys(key: number, altKey: number): void {
  if (!Number.isSafeInteger(key) || key < 0) {
    throw new StorageError("bad_argument", `key must be a safe integer >= 0`);
  }
  if (!Number.isInteger(altKey) || altKey < 0 || altKey > 0xffffffff) {
    throw new StorageError("bad_argument", `altKey must be a u32`);
  }
}

function randomGeneration(): number {
  const [a, b] = crypto.getRandomValues(new Uint32Array(2));
  return (a! & 0x1fffff) * 2 ** 32 + b!;
}

/** magic(4) version(u16) checksum(u8: 0 crc32c, 1 crc32) reserved(1) generation(u64). */
function superblock(generation: number, algorithm: NeedleChecksum): Uint8Array {
  const out = new Uint8Array(SUPERBLOCK_BYTES);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode(SUPERBLOCK_MAGIC));
  view.setUint16(4, VOLUME_VERSION, true);
  out[6] = algorithm === "crc32" ? 1 : 0;
  view.setUint32(8, generation % 2 ** 32, true);
  view.setUint32(12, Math.floor(generation / 2 ** 32), true);
  return out;
}

/**
 * A Haystack volume: one append-only file of needles in its own (locked)
 * directory, an in-memory index key → (offset, size, flags), and an index
 * checkpoint file written in the background.
 *
 * - `put` appends a needle (group commit, like the log); a later put of the
 *   same key supersedes the earlier one.
 * - `get` does exactly one positioned read of the whole needle and verifies
 *   magic, key, cookie and checksum before returning data.
 * - `delete` sets the deleted flag in the needle in place, then drops the
 *   index entry. A checkpoint may still list a deleted needle; `get` sees the
 *   flag in the file and repairs the index (as in the paper).
 * - `compact` copies live needles to a new file while reads and writes go
 *   on, then swaps it in atomically.
 * - When a put would grow the file past `maxBytes`, the volume becomes
 *   read-only: puts fail with `read_only`; gets and deletes still work.
 */
export class NeedleVolume {
  /** The volume's directory. */
  readonly dir: string;
  /** What opening found. */
  readonly recovery: VolumeRecoveryReport;
  readonly #opts: z.infer<typeof OptionsSchema>;
  readonly #lock: DirLock;
  #index: NeedleIndex;
  #reader: PositionedReader;
  #writer: Deno.FsFile;
  #size: number;
  /** End of the needles the in-memory index reflects (what a checkpoint covers). */
  #indexedBytes: number;
  #generation: number;
  readonly #algorithm: NeedleChecksum;
  #commit: GroupCommit<WriteOp, Outcome>;
  #full = false;
  #readOnly = false;
  #closing = false;
  #closed = false;
  #broken: StorageError | null = null;
  #sinceCheckpoint = 0;
  /**
   * The batch buffer, kept between flushes (one at a time): new memory
   * costs a page fault per 4 KiB on first touch, far more than the copy
   * into it on a loaded VM (measured: a fresh 1 MiB buffer filled ~12 ms,
   * a reused one well under 1 ms).
   */
  #batch = new Uint8Array(0);
  #checkpointing: Promise<void> | null = null;
  #compacting = false;
  #syncTimer: ReturnType<typeof setTimeout> | null = null;

  private constructor(
    dir: string,
    opts: z.infer<typeof OptionsSchema>,
    lock: DirLock,
    state: {
      index: NeedleIndex;
      reader: PositionedReader;
      writer: Deno.FsFile;
      size: number;
      generation: number;
      algorithm: NeedleChecksum;
    },
    recovery: VolumeRecoveryReport,
  ) {
    this.dir = dir;
    this.#opts = opts;
    this.#lock = lock;
    this.#index = state.index;
    this.#reader = state.reader;
    this.#writer = state.writer;
    this.#size = state.size;
    this.#indexedBytes = state.size;
    this.#generation = state.generation;
    this.#algorithm = state.algorithm;
    this.recovery = recovery;
    this.#commit = new GroupCommit((ops) => this.#flush(ops));
  }

  /**
   * Opens (or creates) the volume in `dir`: loads the index checkpoint,
   * scans needles past it, and cuts a torn or corrupt tail.
   *
   * @throws StorageError `locked`, `corrupt` (bad volume superblock),
   *   `bad_argument`, `io`.
   */
  static async open(
    dir: string,
    options: NeedleVolumeOptions = {},
  ): Promise<NeedleVolume> {
    const parsed = OptionsSchema.safeParse(options);
    if (!parsed.success) {
      throw new StorageError(
        "bad_argument",
        `invalid volume options: ${parsed.error.message}`,
      );
    }
    const opts = parsed.data;
    const lock = await DirLock.acquire(dir);
    try {
      const { state, recovery } = await recoverVolume(
        dir,
        opts.maxNeedleBytes,
        opts.checksum,
      );
      return new NeedleVolume(dir, opts, lock, state, recovery);
    } catch (e) {
      lock.release();
      throw asStorageError(e, `cannot open volume ${dir}`);
    }
  }

  /** Bytes in the volume file. */
  get sizeBytes(): number {
    return this.#size;
  }

  /** Live needles in the index. */
  get count(): number {
    return this.#index.size;
  }

  /** True when puts are refused (full, or set by {@link setReadOnly}). */
  get readOnly(): boolean {
    return this.#full || this.#readOnly;
  }

  /** Marks the volume read-only (or writable again, unless full). */
  setReadOnly(readOnly: boolean): void {
    this.#readOnly = readOnly;
  }

  /** True when the index has a live needle for the keys. */
  has(key: number, altKey = 0): boolean {
    return this.#index.has(key, altKey);
  }

  /**
   * Stores `data` under (key, altKey), superseding an earlier needle. The
   * bytes are read when the batch is written: do not modify them until the
   * promise settles.
   *
   * @param cookie a random safe integer readers must present.
   * @returns where the needle landed; resolves once durable per policy.
   * @throws StorageError `read_only`, `too_large`, `bad_argument`,
   *   `closed`, `io`.
   */
  async put(
    key: number,
    altKey: number,
    cookie: number,
    data: Uint8Array,
  ): Promise<NeedleLocation> {
    this.#assertAccepting();
    checkKeys(key, altKey);
    if (!Number.isSafeInteger(cookie) || cookie < 0) {
      throw new StorageError("bad_argument", "cookie must be a safe integer");
    }
    if (!(data instanceof Uint8Array)) {
      throw new StorageError("bad_argument", "data must be a Uint8Array");
    }
    if (data.length > this.#opts.maxNeedleBytes) {
      throw new StorageError(
        "too_large",
        `needle of ${data.length} bytes exceeds ${this.#opts.maxNeedleBytes}`,
      );
    }
    if (this.readOnly) {
      throw new StorageError("read_only", `volume ${this.dir} is read-only`);
    }
    const r = await this.#commit.submit({
      kind: "put",
      key,
      altKey,
      cookie,
      data,
    });
    if (!r.ok) throw r.error;
    return r.value as NeedleLocation;
  }

  /**
   * Reads a needle's data with one positioned read, verifying its magic,
   * keys, cookie and checksum.
   *
   * @throws StorageError `not_found` (absent, deleted or wrong cookie),
   *   `corrupt` (checksum or structure), `closed`.
   */
  get(key: number, altKey: number, cookie: number): Promise<Uint8Array> {
    try {
      return Promise.resolve(this.getSync(key, altKey, cookie));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Synchronous {@link get}.
   *
   * @param options.into read into this buffer when it is large enough (the
   *   result is then a view of it, valid until its next use).
   * @param options.crc32c the CRC32C the caller expects of the data: the
   *   data is checked against it and, on a CRC32C volume, the needle
   *   checksum is derived from the same pass, so one pass verifies both.
   * @throws StorageError as {@link get}; `corrupt` also when the data does
   *   not match `options.crc32c`.
   */
  getSync(
    key: number,
    altKey: number,
    cookie: number,
    options: { into?: Uint8Array; crc32c?: number } = {},
  ): Uint8Array {
    if (this.#closed) throw new StorageError("closed", "the volume is closed");
    const loc = this.#index.get(key, altKey);
    if (loc === undefined) {
      throw new StorageError(
        "not_found",
        `no needle ${needleName(key, altKey)}`,
      );
    }
    const total = needleBytes(loc.size);
    const bytes = this.#reader.readAt(loc.offset, total, options.into);
    let known: { size: number; dataCrc: number } | undefined;
    if (options.crc32c !== undefined && bytes.length === total) {
      // Data starts after the 29-byte needle header.
      const dataCrc = crc32c(bytes.subarray(29, 29 + loc.size));
      if (dataCrc !== options.crc32c >>> 0) {
        throw new StorageError(
          "corrupt",
          `needle ${
            needleName(key, altKey)
          } at ${loc.offset}: data fails the expected CRC32C`,
        );
      }
      known = { size: loc.size, dataCrc };
    }
    const p = parseNeedle(
      bytes,
      0,
      this.#opts.maxNeedleBytes,
      this.#algorithm,
      known,
    );
    if (p.kind !== "ok") {
      throw new StorageError(
        "corrupt",
        `needle ${needleName(key, altKey)} at ${loc.offset}: ${
          p.kind === "short" ? "file ends inside it" : p.why
        }`,
      );
    }
    const h = p.header;
    if (h.key !== key || h.altKey !== altKey || h.size !== loc.size) {
      throw new StorageError(
        "corrupt",
        `needle at ${loc.offset} is not ${
          needleName(key, altKey)
        } (index and volume disagree)`,
      );
    }
    if (h.flags & FLAG_DELETED) {
      // Deleted after the checkpoint the index came from: repair it.
      this.#index.delete(key, altKey, loc.offset);
      throw new StorageError(
        "not_found",
        `needle ${needleName(key, altKey)} was deleted`,
      );
    }
    if (h.cookie !== cookie) {
      throw new StorageError(
        "not_found",
        `needle ${needleName(key, altKey)}: cookie mismatch`,
      );
    }
    return bytes.subarray(p.dataOffset, p.dataOffset + h.size);
  }

  /**
   * Deletes a needle: sets its deleted flag in the volume, syncs per policy,
   * then removes it from the index.
   *
   * @returns false when there was no such needle.
   * @throws StorageError `bad_argument`, `closed`, `io`.
   */
  async delete(key: number, altKey = 0): Promise<boolean> {
    this.#assertAccepting();
    checkKeys(key, altKey);
    const r = await this.#commit.submit({ kind: "delete", key, altKey });
    if (!r.ok) throw r.error;
    return r.value as boolean;
  }

  /**
   * Writes an index checkpoint covering every needle acknowledged so far
   * (also done in the background every `checkpointEvery` writes).
   */
  async checkpoint(): Promise<void> {
    this.#assertAccepting();
    // One started earlier may have captured an older index: wait, then write.
    await this.#checkpointing?.catch(() => {});
    await this.#checkpoint();
  }

  /** Forces written needles and flags to stable storage. */
  sync(): Promise<void> {
    this.#assertAccepting();
    return this.#commit.exclusive(() => this.#writer.syncData());
  }

  /**
   * Copies live needles to a new volume file and swaps it in atomically
   * (fsync, rename, fsync directory), reclaiming deleted and superseded
   * needles. Reads and writes continue during the copy; only the final
   * swap (copying needles written meanwhile) holds writes back.
   *
   * @throws StorageError `bad_argument` when a compaction is running,
   *   `corrupt` when a live needle fails its checksum, `closed`, `io`.
   */
  async compact(): Promise<VolumeCompactReport> {
    this.#assertAccepting();
    if (this.#compacting) {
      throw new StorageError("bad_argument", "a compaction is already running");
    }
    this.#compacting = true;
    const tmpPath = join(this.dir, COMPACT_FILE);
    let out: Deno.FsFile | undefined;
    let swapping = false;
    try {
      const generation = randomGeneration();
      const beforeBytes = this.#size;
      // Phase 1: what is live now, below the current end.
      const end0 = this.#size;
      const live = [...this.#index.values()].sort((a, b) =>
        a.offset - b.offset
      );
      out = await Deno.open(tmpPath, {
        read: true,
        write: true,
        create: true,
        truncate: true,
      });
      const sb = superblock(generation, this.#algorithm);
      await writeAll(out, sb);
      let outSize = sb.length;
      const moved = new Map<number, number>(); // old offset → new offset
      // Phase 2: copy, concurrently with puts, deletes and gets.
      const copy = async (locs: NeedleLocation[]) => {
        let buf: Uint8Array[] = [];
        let bufBytes = 0;
        for (const loc of locs) {
          const bytes = this.#readNeedleForCopy(loc);
          if (bytes === null) continue; // deleted in place
          moved.set(loc.offset, outSize + bufBytes);
          buf.push(bytes);
          bufBytes += bytes.length;
          if (bufBytes >= 4 * 2 ** 20) {
            await writeAll(out!, concat(buf, bufBytes));
            outSize += bufBytes;
            buf = [];
            bufBytes = 0;
          }
        }
        if (bufBytes > 0) {
          await writeAll(out!, concat(buf, bufBytes));
          outSize += bufBytes;
        }
      };
      await copy(live);
      // Phase 3: with writes held back, copy what arrived meanwhile, mark
      // copies that were deleted or superseded, and swap.
      return await this.#commit.exclusive(async () => {
        this.#assertOpen();
        await copy(
          [...this.#index.values()].filter((l) =>
            l.offset >= end0 && !moved.has(l.offset)
          ).sort((a, b) => a.offset - b.offset),
        );
        const next = new NeedleIndex();
        const referenced = new Set<number>();
        for (const loc of this.#index.values()) {
          const at = moved.get(loc.offset);
          if (at === undefined) continue; // deleted in place after a checkpoint
          next.set({ ...loc, offset: at });
          referenced.add(at);
        }
        // A copy nobody references would come back to life on a rescan.
        const flag = new Uint8Array([FLAG_DELETED]);
        for (const at of moved.values()) {
          if (referenced.has(at)) continue;
          await out!.seek(at + NEEDLE_FLAGS_OFFSET, Deno.SeekMode.Start);
          await writeAll(out!, flag);
        }
        await out!.sync();
        await Deno.rename(tmpPath, join(this.dir, VOLUME_FILE));
        swapping = true;
        await syncDir(this.dir);
        // The swap itself is synchronous: a get sees old or new, never a mix.
        const reader = PositionedReader.open(join(this.dir, VOLUME_FILE));
        await out!.seek(outSize, Deno.SeekMode.Start);
        this.#reader.close();
        this.#writer.close();
        this.#reader = reader;
        this.#writer = out!;
        out = undefined;
        this.#index = next;
        this.#size = outSize;
        this.#indexedBytes = outSize;
        this.#generation = generation;
        this.#full = false;
        swapping = false;
        await this.#writeCheckpointNow();
        return {
          beforeBytes,
          afterBytes: outSize,
          liveNeedles: next.size,
        };
      });
    } catch (e) {
      out?.close();
      await Deno.remove(tmpPath).catch(() => {});
      const err = asStorageError(e, "compaction failed");
      // Renamed but not swapped in: the open handles point at the old
      // (unlinked) file, so writes must stop; reopening recovers.
      if (swapping) this.#broken ??= err;
      throw err;
    } finally {
      this.#compacting = false;
    }
  }

  /** Waits for pending writes, checkpoints, syncs, closes. Idempotent. */
  async close(): Promise<void> {
    if (this.#closing) return await this.#commit.idle();
    this.#closing = true;
    await this.#checkpointing?.catch(() => {});
    await this.#commit.exclusive(async () => {
      if (this.#syncTimer !== null) clearTimeout(this.#syncTimer);
      try {
        if (this.#broken === null) {
          await this.#writer.syncData();
          await this.#writeCheckpointNow();
        }
      } finally {
        this.#closed = true;
        this.#reader.close();
        this.#writer.close();
        this.#lock.release();
      }
    });
  }

  #assertAccepting(): void {
    if (this.#closing) throw new StorageError("closed", "the volume is closed");
    this.#assertOpen();
  }

  #assertOpen(): void {
    if (this.#closed) throw new StorageError("closed", "the volume is closed");
    if (this.#broken !== null) throw this.#broken;
  }

  /** A needle's verified bytes, or null when it is flagged deleted. */
  #readNeedleForCopy(loc: NeedleLocation): Uint8Array | null {
    const bytes = this.#reader.readAt(loc.offset, needleBytes(loc.size));
    const p = parseNeedle(
      bytes,
      0,
      this.#opts.maxNeedleBytes,
      this.#algorithm,
    );
    if (p.kind !== "ok" || p.header.key !== loc.key) {
      throw new StorageError(
        "corrupt",
        `live needle ${loc.key}:${loc.altKey} at ${loc.offset} is damaged; compaction stopped`,
      );
    }
    return p.header.flags & FLAG_DELETED ? null : bytes;
  }

  async #flush(ops: WriteOp[]): Promise<Outcome[]> {
    this.#assertOpen();
    const outcomes: Outcome[] = [];
    const apply: Array<() => void> = [];
    // Every put's needle is built in place in one buffer for the batch (a
    // buffer per needle and a concatenation would copy each byte twice).
    let batchBytes = 0;
    let batchUse: Uint8Array | undefined;
    for (const op of ops) {
      if (op.kind === "put") batchBytes += needleBytes(op.data.length);
    }
    if (this.#batch.length < batchBytes) {
      // Kept up to 64 MiB (a chunk piece's blocks); a larger batch is one-off.
      const fresh = new Uint8Array(batchBytes);
      if (batchBytes <= 64 * 2 ** 20) this.#batch = fresh;
      else this.#batch = new Uint8Array(0);
      batchUse = fresh;
    }
    const batch = batchUse ?? this.#batch;
    let written = 0;
    let pendingBytes = 0;
    let wrote = 0;
    // Index changes made within this batch, visible to later ops in it.
    const overlay = new Map<string, NeedleLocation | null>();
    const lookup = (k: string, key: number, altKey: number) =>
      overlay.has(k) ? overlay.get(k)! : this.#index.get(key, altKey) ?? null;
    const writePending = async () => {
      if (pendingBytes === 0) return;
      await writeAll(
        this.#writer,
        batch.subarray(written, written + pendingBytes),
      );
      this.#size += pendingBytes;
      written += pendingBytes;
      pendingBytes = 0;
    };
    try {
      for (const op of ops) {
        const k = indexKey(op.key, op.altKey);
        if (op.kind === "put") {
          const total = needleBytes(op.data.length);
          if (this.#size + pendingBytes + total > this.#opts.maxBytes) {
            this.#full = true;
          }
          if (this.readOnly) {
            outcomes.push({
              ok: false,
              error: new StorageError(
                "read_only",
                `volume ${this.dir} is full (${this.#opts.maxBytes} bytes) or read-only`,
              ),
            });
            continue;
          }
          writeNeedle(
            batch,
            written + pendingBytes,
            {
              cookie: op.cookie,
              key: op.key,
              altKey: op.altKey,
              flags: 0,
            },
            op.data,
            this.#algorithm,
          );
          const loc: NeedleLocation = {
            key: op.key,
            altKey: op.altKey,
            offset: this.#size + pendingBytes,
            size: op.data.length,
            flags: 0,
          };
          pendingBytes += total;
          overlay.set(k, loc);
          apply.push(() => this.#index.set(loc));
          outcomes.push({ ok: true, value: loc });
          wrote++;
        } else {
          const loc = lookup(k, op.key, op.altKey);
          if (loc === null) {
            outcomes.push({ ok: true, value: false });
            continue;
          }
          await writePending();
          await this.#writer.seek(
            loc.offset + NEEDLE_FLAGS_OFFSET,
            Deno.SeekMode.Start,
          );
          await writeAll(this.#writer, new Uint8Array([FLAG_DELETED]));
          await this.#writer.seek(this.#size, Deno.SeekMode.Start);
          overlay.set(k, null);
          apply.push(() => {
            this.#index.delete(loc.key, loc.altKey, loc.offset);
          });
          outcomes.push({ ok: true, value: true });
          wrote++;
        }
      }
      await writePending();
      if (wrote > 0) {
        const policy = this.#opts.sync;
        if (policy === "always") {
          await this.#writer.syncData();
        } else if (typeof policy === "object" && this.#syncTimer === null) {
          this.#syncTimer = setTimeout(() => {
            this.#syncTimer = null;
            this.sync().catch(() => {/* surfaced by the next operation */});
          }, policy.batchMs);
        }
      }
    } catch (e) {
      // The file's state is unknown after a failed write: stop; reopen recovers.
      const err = asStorageError(e, "volume write failed; reopen to recover");
      this.#broken ??= err;
      throw err;
    }
    // The volume (and its sync) first, then the index.
    for (const f of apply) f();
    this.#indexedBytes = this.#size;
    this.#sinceCheckpoint += wrote;
    if (
      this.#sinceCheckpoint >= this.#opts.checkpointEvery &&
      this.#checkpointing === null
    ) {
      void this.#checkpoint().catch(() => {/* retried at the next one */});
    }
    return outcomes;
  }

  #checkpoint(): Promise<void> {
    if (this.#checkpointing !== null) return this.#checkpointing;
    this.#checkpointing = this.#writeCheckpointNow().finally(() => {
      this.#checkpointing = null;
    });
    return this.#checkpointing;
  }

  /** Captures the index synchronously, then writes it atomically. */
  async #writeCheckpointNow(): Promise<void> {
    this.#sinceCheckpoint = 0;
    const bytes = encodeCheckpoint({
      generation: this.#generation,
      coveredBytes: this.#indexedBytes,
      entries: [...this.#index.values()],
    });
    await writeFileAtomic(join(this.dir, INDEX_FILE), bytes);
  }
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

async function recoverVolume(
  dir: string,
  maxNeedleBytes: number,
  createWith: NeedleChecksum,
) {
  const path = join(dir, VOLUME_FILE);
  const recovery: VolumeRecoveryReport = {
    checkpoint: "none",
    scannedFrom: SUPERBLOCK_BYTES,
    scannedNeedles: 0,
    droppedBytes: 0,
    removedCompactionFile: false,
  };
  // A compaction that did not reach its rename left only garbage.
  try {
    await Deno.remove(join(dir, COMPACT_FILE));
    recovery.removedCompactionFile = true;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  let fresh = false;
  try {
    await Deno.stat(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    fresh = true;
  }
  if (fresh) {
    await writeFileAtomic(path, superblock(randomGeneration(), createWith));
  }
  const writer = await Deno.open(path, { read: true, write: true });
  const reader = PositionedReader.open(path);
  try {
    let size = (await writer.stat()).size;
    const sb = reader.readAt(0, SUPERBLOCK_BYTES);
    const view = new DataView(sb.buffer, sb.byteOffset, sb.byteLength);
    if (
      sb.length < SUPERBLOCK_BYTES ||
      new TextDecoder().decode(sb.subarray(0, 4)) !== SUPERBLOCK_MAGIC ||
      view.getUint16(4, true) !== VOLUME_VERSION || sb[6]! > 1
    ) {
      throw new StorageError("corrupt", `${path} is not a needle volume`);
    }
    const generation = view.getUint32(8, true) +
      view.getUint32(12, true) * 2 ** 32;
    const algorithm: NeedleChecksum = sb[6] === 1 ? "crc32" : "crc32c";
    const index = new NeedleIndex();
    let scanFrom = SUPERBLOCK_BYTES;
    try {
      const cp = decodeCheckpoint(await Deno.readFile(join(dir, INDEX_FILE)));
      if ("unusable" in cp) recovery.checkpoint = cp.unusable;
      else if (cp.generation !== generation) {
        recovery.checkpoint = "from another volume generation";
      } else if (cp.coveredBytes > size || cp.coveredBytes < SUPERBLOCK_BYTES) {
        recovery.checkpoint =
          `covers ${cp.coveredBytes} bytes; volume has ${size}`;
      } else {
        for (const e of cp.entries) index.set(e);
        scanFrom = cp.coveredBytes;
        recovery.checkpoint = "used";
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    recovery.scannedFrom = scanFrom;
    // Scan needles past the checkpoint, in chunks, cutting a bad tail.
    let pos = scanFrom;
    let stopAt: number | null = null;
    while (pos < size && stopAt === null) {
      const chunk = reader.readAt(pos, Math.min(SCAN_CHUNK, size - pos));
      let off = 0;
      while (off < chunk.length) {
        const p = parseNeedle(chunk, off, maxNeedleBytes, algorithm);
        if (p.kind === "ok") {
          const { key, altKey } = p.header;
          if (p.header.flags & FLAG_DELETED) {
            const cur = index.get(key, altKey);
            // Only the current needle's flag deletes the key.
            if (cur === undefined || cur.offset < pos + off) {
              index.delete(key, altKey);
            }
          } else {
            index.set({
              key: p.header.key,
              altKey: p.header.altKey,
              offset: pos + off,
              size: p.header.size,
              flags: 0,
            });
          }
          recovery.scannedNeedles++;
          off += p.total;
          continue;
        }
        if (p.kind === "short" && pos + off + p.need <= size) {
          // The needle continues past this chunk: read on from it.
          break;
        }
        stopAt = pos + off;
        break;
      }
      if (stopAt === null && off === 0 && chunk.length > 0) {
        // A single needle larger than a chunk.
        const p = parseNeedle(chunk, 0, maxNeedleBytes, algorithm);
        const need = p.kind === "short" ? p.need : chunk.length;
        const big = reader.readAt(pos, need);
        const q = parseNeedle(big, 0, maxNeedleBytes, algorithm);
        if (q.kind !== "ok") {
          stopAt = pos;
          break;
        }
        if (q.header.flags & FLAG_DELETED) {
          index.delete(q.header.key, q.header.altKey);
        } else {
          index.set({
            key: q.header.key,
            altKey: q.header.altKey,
            offset: pos,
            size: q.header.size,
            flags: 0,
          });
        }
        recovery.scannedNeedles++;
        off = q.total;
      }
      pos += off;
    }
    if (stopAt !== null) {
      recovery.droppedBytes = size - stopAt;
      await writer.truncate(stopAt);
      await writer.syncData();
      size = stopAt;
    }
    await writer.seek(size, Deno.SeekMode.Start);
    return {
      state: { index, reader, writer, size, generation, algorithm },
      recovery,
    };
  } catch (e) {
    reader.close();
    writer.close();
    throw e;
  }
}
