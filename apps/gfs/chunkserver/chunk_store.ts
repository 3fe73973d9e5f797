import { join } from "node:path";
import { crc32c, decodeCbor } from "@strata/codec";
import {
  compactToSnapshot,
  isStorageError,
  needleBytes,
  NeedleVolume,
  SegmentedLog,
  SnapshotStore,
  StorageError,
  type SyncPolicy,
} from "@strata/storage";
import { Encoder } from "cbor-x";
import { z } from "zod";
import { GfsError } from "../shared/gfs_error.ts";
import { decodeAppend, encodeAppend, isAppendRecord } from "./append_record.ts";

/** Bytes per checksummed block (the GFS paper's 64 KiB). */
export const BLOCK_BYTES = 64 * 1024;
/** Journal records between metadata checkpoints. */
const JOURNAL_CHECKPOINT_EVERY = 4096;
/** Journal bytes between metadata checkpoints (appended data counts). */
const JOURNAL_CHECKPOINT_BYTES = 64 * 2 ** 20;
/** Largest write at a chunk's end that goes to the journal instead of blocks. */
const JOURNAL_APPEND_MAX = 4 * BLOCK_BYTES;
/**
 * A chunk's journaled bytes are folded into blocks once this many wait
 * (default). A fold holds the chunk's appends for two syncs (blocks, then
 * metadata), so it is done rarely: once per 1 MiB, not per block.
 */
const FOLD_BYTES = 16 * BLOCK_BYTES;
/** All chunks' journaled bytes are folded once this many wait in memory. */
const FOLD_ALL_BYTES = 32 * 2 ** 20;
const cbor = new Encoder({ useRecords: false, mapsAsObjects: true });

const MetaSchema = z.object({
  handle: z.number().int().min(1),
  version: z.number().int().min(1),
  length: z.number().int().min(0),
  cookie: z.number().int().min(0),
  crcs: z.array(z.number().int().min(0)),
});

const JournalRecord = z.union([
  z.object({ m: MetaSchema }),
  z.object({ d: z.number().int().min(1) }),
]);

/**
 * What a chunkserver knows of one chunk it stores, as kept in the metadata
 * journal: `length` and `crcs` describe the bytes folded into blocks.
 */
export type ChunkMeta = z.infer<typeof MetaSchema>;

/** A chunk as callers see it: its length counts bytes not yet folded. */
export interface ChunkInfo {
  handle: number;
  version: number;
  length: number;
}

/** Bytes appended at a chunk's end, durable in the journal, not yet in blocks. */
interface Tail {
  pieces: { data: Uint8Array; crc: number }[];
  bytes: number;
}

/**
 * A chunk's appends whose journal records are queued but not yet covered
 * by a sync: they hold the offsets past its tail.
 */
interface InFlight {
  /** Their bytes, all past the chunk's durable length. */
  bytes: number;
  /** Settles (never rejects) once the last of them is in the tail or failed. */
  last: Promise<void>;
}

/** What a write decided inside the chunk's queue. */
type Queued = number | { durable: Promise<number> };

/** Options of {@link ChunkStore.open}. */
export interface ChunkStoreOptions {
  /** Largest chunk, bytes (the master's chunk size). */
  chunkBytes: number;
  /** Sync policy of the volume and metadata journal (default "always"). */
  sync?: SyncPolicy;
  /** Journal records between metadata checkpoints (default 4096). */
  checkpointEvery?: number;
  /** Journal segment size, bytes (default 64 MiB; small in tests). */
  journalSegmentBytes?: number;
  /** A chunk's tail is folded into blocks at this many bytes (default 1 MiB). */
  foldBytes?: number;
}

/**
 * Chunk replicas on one chunkserver. Data lives in a Haystack needle volume
 * as one needle per 64 KiB block (key = chunk handle, alternate key = block
 * number). Each chunk's version, length and per-block CRC32C live in a
 * metadata journal (a segmented log, checkpointed into a snapshot every few
 * thousand records or 64 MiB).
 *
 * A small write at a chunk's end (up to 256 KiB: a batch of record
 * appends) goes only into the journal: one append record with the bytes
 * and their CRC32C, one group-committed `fdatasync` shared by every write
 * in flight on the whole store. The chunk's queue is released as soon as
 * the record is queued in the journal (its offset taken past the appends
 * still in flight), so the chunk's next append is queued while this one's
 * sync runs; each is acknowledged, and its bytes become readable, only
 * once a sync covers it, in offset order. The bytes stay in memory as the chunk's
 * tail, and reads of them verify their CRC32C. A chunk's tail is folded
 * into blocks later: once it holds 1 MiB, before any other write or
 * version change of the chunk, on a scrub, and for every chunk before a
 * checkpoint (which is what lets the checkpoint drop the journal). A fold
 * writes the blocks first and journals the new metadata only once they are
 * durable, so a crash in between leaves the old metadata, the append
 * records and a longer last block whose prefix still matches its checksum.
 * On open, the journal is replayed after the newest checkpoint: append
 * records rebuild the tails, each checked against its CRC32C (a torn or
 * damaged tail of the journal is cut by the log).
 *
 * Other writes rewrite the blocks they touch and append a metadata record,
 * both group-committed, and the new length becomes visible only once both
 * are durable. Every read verifies the CRC32C of every block it touches
 * (and the needle checksum underneath); a mismatch throws `corrupt` and the
 * caller drops the replica.
 */
export class ChunkStore {
  readonly #volume: NeedleVolume;
  readonly #journal: SegmentedLog;
  readonly #snaps: SnapshotStore;
  readonly #meta = new Map<number, ChunkMeta>();
  /** Journaled bytes past each chunk's folded length. */
  readonly #tails = new Map<number, Tail>();
  #tailBytes = 0;
  /** Appends queued in the journal, not yet durable, per chunk. */
  readonly #inFlight = new Map<number, InFlight>();
  /**
   * Set when a queued append's journal write failed: later records of the
   * chunk may already be queued behind it, so no write is taken again
   * (the journal itself stops too; reopening recovers).
   */
  #broken: GfsError | null = null;
  #foldingAll: Promise<void> | null = null;
  readonly #locks = new Map<number, Promise<unknown>>();
  /** One needle's worth: reads are synchronous, so one buffer serves all. */
  readonly #scratch = new Uint8Array(needleBytes(BLOCK_BYTES));
  #sinceCheckpoint = 0;
  #bytesSinceCheckpoint = 0;
  #checkpointing: Promise<void> | null = null;
  #checkpointEvery = JOURNAL_CHECKPOINT_EVERY;
  #foldBytes = FOLD_BYTES;
  /** Largest chunk, bytes (the master's chunk size). */
  readonly chunkBytes: number;

  private constructor(
    volume: NeedleVolume,
    journal: SegmentedLog,
    snaps: SnapshotStore,
    chunkBytes: number,
  ) {
    this.#volume = volume;
    this.#journal = journal;
    this.#snaps = snaps;
    this.chunkBytes = chunkBytes;
  }

  /**
   * Opens the store in `dir`: the volume in `dir/volume`, the metadata
   * journal in `dir/journal` and its checkpoints in `dir/checkpoints`;
   * metadata is the newest checkpoint plus the journal after it, and each
   * chunk's tail is the append records after its last metadata record.
   * @throws StorageError `locked` when another process has the directory,
   *   `corrupt` when the journal is damaged before its tail or an append
   *   record fails its checksum or leaves a gap.
   */
  static async open(
    dir: string,
    options: ChunkStoreOptions,
  ): Promise<ChunkStore> {
    for (const sub of ["volume", "journal", "checkpoints"]) {
      await Deno.mkdir(join(dir, sub), { recursive: true });
    }
    const sync = options.sync ?? "always";
    const volume = await NeedleVolume.open(join(dir, "volume"), {
      maxBytes: 2 ** 44,
      maxNeedleBytes: BLOCK_BYTES,
      sync,
    });
    const snaps = await SnapshotStore.open(join(dir, "checkpoints"));
    const journal = await SegmentedLog.open(join(dir, "journal"), {
      sync,
      // The sync of a batch on the event loop's thread: the chunkserver
      // acknowledges nothing before it anyway, and the thread-pool hand-off
      // cost as much CPU as the sync (see the option).
      inlineSync: true,
      ...(options.journalSegmentBytes === undefined
        ? {}
        : { segmentBytes: options.journalSegmentBytes }),
    });
    const store = new ChunkStore(volume, journal, snaps, options.chunkBytes);
    store.#checkpointEvery = options.checkpointEvery ??
      JOURNAL_CHECKPOINT_EVERY;
    store.#foldBytes = options.foldBytes ?? FOLD_BYTES;
    const { snapshot } = await snaps.loadNewest();
    let from = journal.firstIndex;
    /**
     * Chunks whose appends do not follow on from what the checkpoint holds
     * (handle → the first such record). A checkpoint may be ahead of its
     * index (ops of a chunk queued before it ran finish before it reads the
     * metadata, their records landing after the index): a chunk it no
     * longer holds because a later record deletes it is not a gap.
     */
    const gaps = new Map<number, string>();
    if (snapshot !== null) {
      const metas = z.array(MetaSchema).parse(
        decodeCbor(await snapshot.readState(), false),
      );
      for (const m of metas) store.#meta.set(m.handle, m);
      from = Math.max(from, snapshot.meta.lastIncludedIndex + 1);
    }
    for (let i = from; i <= journal.lastIndex; i += 1024) {
      const recs = await journal.read(
        i,
        Math.min(journal.lastIndex + 1, i + 1024),
      );
      for (const [k, r] of recs.entries()) {
        if (isAppendRecord(r)) {
          store.#replayAppend(r, i + k, gaps);
          continue;
        }
        const rec = JournalRecord.parse(decodeCbor(r, false));
        const handle = "m" in rec ? rec.m.handle : rec.d;
        store.#dropTail(handle);
        if ("m" in rec) store.#meta.set(handle, rec.m);
        else {
          store.#meta.delete(handle);
          gaps.delete(handle);
        }
      }
    }
    // A gap no later delete explains: records are missing.
    for (const message of gaps.values()) {
      throw new StorageError("corrupt", message);
    }
    return store;
  }

  /**
   * One append record on open: a chunk's tail grows by it, unless the
   * metadata (a checkpoint taken after it was folded) covers it already.
   */
  #replayAppend(
    bytes: Uint8Array,
    index: number,
    gaps: Map<number, string>,
  ): void {
    const a = decodeAppend(bytes);
    if ("error" in a) {
      throw new StorageError(
        "corrupt",
        `journal record ${index}: ${a.error}`,
      );
    }
    if (gaps.has(a.handle)) return;
    let m = this.#meta.get(a.handle);
    if (m === undefined && a.offset > 0) {
      gaps.set(
        a.handle,
        `journal record ${index} appends chunk ${a.handle} at ${a.offset}, but it holds no bytes`,
      );
      return;
    }
    if (m === undefined) {
      // The chunk's first bytes: its empty state was never journaled.
      const cookie = crypto.getRandomValues(new Uint32Array(1))[0]!;
      m = { handle: a.handle, version: a.version, length: 0, cookie, crcs: [] };
      this.#meta.set(a.handle, m);
    }
    const length = this.#length(m);
    if (a.offset + a.data.length <= length) return;
    if (a.offset !== length) {
      throw new StorageError(
        "corrupt",
        `journal record ${index} appends chunk ${a.handle} at ${a.offset}, but it holds ${length} bytes`,
      );
    }
    if (a.version > m.version) {
      this.#meta.set(a.handle, { ...m, version: a.version });
    }
    // A copy: the record's buffer holds a whole batch of the log.
    this.#pushTail(a.handle, a.data.slice(), a.crc);
  }

  /** Bytes of chunk data stored. */
  get usedBytes(): number {
    let n = 0;
    for (const m of this.#meta.values()) n += m.length;
    return n + this.#tailBytes;
  }

  /** Every chunk held: [handle, version, length]. */
  list(): [number, number, number][] {
    return [...this.#meta.values()].map((
      m,
    ) => [m.handle, m.version, this.#length(m)]);
  }

  /** A chunk's version and length (journaled bytes included), or undefined. */
  meta(handle: number): ChunkInfo | undefined {
    const m = this.#meta.get(handle);
    return m === undefined
      ? undefined
      : { handle, version: m.version, length: this.#length(m) };
  }

  /** `fdatasync` calls of the journal so far (group commit: far fewer than writes). */
  get journalSyncs(): number {
    return this.#journal.syncCount;
  }

  /** Of {@link journalSyncs}, those run inline on the event loop (see `open`). */
  get journalInlineSyncs(): number {
    return this.#journal.inlineSyncCount;
  }

  /** Bytes journaled but not yet folded into blocks (all chunks). */
  get unfoldedBytes(): number {
    return this.#tailBytes;
  }

  /**
   * Creates an empty chunk at `version`, or moves an existing one to
   * `version` (a version bump before a new lease).
   * @throws GfsError `not_found` (absent and not `create`), `stale` (the
   *   chunk already has a newer version).
   */
  setVersion(handle: number, version: number, create: boolean): Promise<void> {
    return this.#serial(handle, async () => {
      await this.#settle(handle);
      const m = this.#meta.get(handle);
      if (m === undefined) {
        if (!create) throw new GfsError("not_found", `no chunk ${handle}`);
        // An empty chunk lives in memory until its first write: losing it
        // in a crash loses no data (the master sees a missing replica).
        const cookie = crypto.getRandomValues(new Uint32Array(1))[0]!;
        this.#meta.set(handle, {
          handle,
          version,
          length: 0,
          cookie,
          crcs: [],
        });
        return;
      }
      if (m.version > version) {
        throw new GfsError(
          "stale",
          `chunk ${handle} is at version ${m.version}`,
        );
      }
      if (m.version !== version) {
        // A metadata record ends the chunk's tail on replay: fold it first.
        await this.#foldNow(handle);
        const f = this.#meta.get(handle)!;
        if (f.length === 0) this.#meta.set(handle, { ...f, version });
        else await this.#saveMeta({ ...f, version });
      }
    });
  }

  /**
   * Writes `data` at `offset` (zero-padding a gap past the end) into a
   * chunk at `version`; serial per chunk. A write of up to 256 KiB at the
   * chunk's end goes only into the journal (one group-committed sync).
   * @returns the chunk's new length.
   * @throws GfsError `not_found`, `stale` (version differs), `too_large`
   *   (past the chunk size), `corrupt` (a partial block failed its check).
   */
  write(
    handle: number,
    version: number,
    offset: number,
    data: Uint8Array,
  ): Promise<number> {
    return this.#serial(handle, async (): Promise<Queued> => {
      if (this.#broken) throw this.#broken;
      const m = this.#checked(handle, version);
      // The end past the appends still in flight: the next one goes there.
      const length = this.#length(m) + (this.#inFlight.get(handle)?.bytes ?? 0);
      const end = offset + data.length;
      if (end > this.chunkBytes) {
        throw new GfsError(
          "too_large",
          `write to ${end} passes the chunk size ${this.chunkBytes}`,
        );
      }
      if (offset === length && data.length > 0) {
        if (data.length <= JOURNAL_APPEND_MAX) {
          // Released at once: the chunk's queue does not wait for the sync.
          return { durable: this.#queueAppend(m, length, data) };
        }
      }
      // Anything else sees the appends in flight durable first.
      await this.#settle(handle);
      if (this.#broken) throw this.#broken;
      const durable = this.#length(this.#checked(handle, version));
      if (data.length === 0 && offset <= durable) return durable;
      await this.#foldNow(handle);
      return await this.#writeBlocks(this.#meta.get(handle)!, offset, data);
    }).then((q) => typeof q === "number" ? q : q.durable);
  }

  /**
   * Queues `data`'s journal record at the end of chunk `m` (which, with
   * the appends in flight, holds `length` bytes), in the chunk's queue.
   * @returns resolves with the new end once a sync covers the record and
   *   every earlier one of the chunk is in its tail.
   */
  #queueAppend(
    m: ChunkMeta,
    length: number,
    data: Uint8Array,
  ): Promise<number> {
    const handle = m.handle;
    const crc = crc32c(data);
    const rec = encodeAppend({
      handle,
      version: m.version,
      offset: length,
      crc,
      data,
    });
    // Queued in the journal now, synchronously: journal order is offset
    // order, and one sync covers a record and every record before it.
    const journaled = this.#journalAppend(rec);
    let f = this.#inFlight.get(handle);
    if (f === undefined) {
      this.#inFlight.set(handle, f = { bytes: 0, last: Promise.resolve() });
    }
    const flight = f;
    flight.bytes += data.length;
    const earlier = flight.last;
    const durable = (async () => {
      let failed: unknown;
      try {
        await journaled;
      } catch (e) {
        failed = e;
      }
      // Into the tail in offset order, after every earlier append.
      await earlier;
      flight.bytes -= data.length;
      if (failed !== undefined) {
        this.#broken ??= this.#storageError(failed, handle);
        throw this.#storageError(failed, handle);
      }
      if (this.#broken) throw this.#broken;
      // The record's own bytes serve reads: no copy, and the caller may
      // reuse `data`.
      this.#pushTail(handle, rec.subarray(rec.length - data.length), crc);
      if (this.#tails.get(handle)!.bytes >= this.#foldBytes) {
        this.#serial(handle, () => this.#foldNow(handle)).catch(() => {});
      }
      if (this.#tailBytes >= FOLD_ALL_BYTES) this.foldAll().catch(() => {});
      return length + data.length;
    })();
    const last = durable.then(() => {}, () => {});
    flight.last = last;
    last.then(() => {
      if (this.#inFlight.get(handle)?.last === last) {
        this.#inFlight.delete(handle);
      }
    });
    return durable;
  }

  /** Waits until a chunk's appends in flight are in its tail (or failed). */
  async #settle(handle: number): Promise<void> {
    const f = this.#inFlight.get(handle);
    if (f !== undefined) await f.last;
  }

  /**
   * Folds every chunk's journaled bytes into blocks (when too many wait in
   * memory); one pass at a time.
   */
  foldAll(): Promise<void> {
    if (this.#foldingAll) return this.#foldingAll;
    this.#foldingAll = this.#foldEvery().finally(() => {
      this.#foldingAll = null;
    });
    return this.#foldingAll;
  }

  /** Folds the tail of every chunk that has one now. */
  async #foldEvery(): Promise<void> {
    const failed: unknown[] = [];
    const handles = new Set([...this.#tails.keys(), ...this.#inFlight.keys()]);
    for (const handle of handles) {
      await this.#serial(handle, () => this.#foldNow(handle)).catch((e) =>
        failed.push(e)
      );
    }
    if (failed.length > 0) throw failed[0];
  }

  /**
   * Writes a chunk's tail into its blocks (inside the chunk's serial
   * queue): the blocks first, durable, then the metadata record that ends
   * the tail on replay.
   */
  async #foldNow(handle: number): Promise<void> {
    await this.#settle(handle);
    const t = this.#tails.get(handle);
    const m = this.#meta.get(handle);
    if (t === undefined || m === undefined) return;
    const data = new Uint8Array(t.bytes);
    let o = 0;
    for (const p of t.pieces) {
      if (crc32c(p.data) !== p.crc) {
        throw new GfsError(
          "corrupt",
          `chunk ${handle}: journaled bytes fail their CRC32C`,
        );
      }
      data.set(p.data, o);
      o += p.data.length;
    }
    await this.#writeBlocks(m, m.length, data, true);
    this.#dropTail(handle);
  }

  /**
   * Writes `data` at `offset` into the blocks of chunk `m` (no tail) and
   * journals the new metadata. `ordered`: the metadata only once the
   * blocks are durable (a fold: the journal holds the bytes until then).
   */
  async #writeBlocks(
    m: ChunkMeta,
    offset: number,
    data: Uint8Array,
    ordered = false,
  ): Promise<number> {
    const handle = m.handle;
    if (offset > m.length) {
      const padded = new Uint8Array(offset - m.length + data.length);
      padded.set(data, offset - m.length);
      data = padded;
      offset = m.length;
    }
    const end = offset + data.length;
    if (data.length === 0) return m.length;
    const newLength = Math.max(m.length, end);
    const crcs = m.crcs.slice();
    const puts: Promise<unknown>[] = [];
    const first = Math.floor(offset / BLOCK_BYTES);
    const last = Math.floor((end - 1) / BLOCK_BYTES);
    for (let b = first; b <= last; b++) {
      const start = b * BLOCK_BYTES;
      const blockEnd = Math.min(start + BLOCK_BYTES, newLength);
      let block: Uint8Array;
      const whole = offset <= start && end >= blockEnd;
      if (whole) {
        block = data.subarray(start - offset, blockEnd - offset);
      } else {
        block = new Uint8Array(blockEnd - start);
        if (start < m.length) block.set(this.#readBlock(m, b));
        const from = Math.max(start, offset);
        const to = Math.min(blockEnd, end);
        block.set(data.subarray(from - offset, to - offset), from - start);
      }
      crcs[b] = crc32c(block);
      puts.push(this.#volume.put(handle, b, m.cookie, block));
    }
    const next = { ...m, length: newLength, crcs };
    if (ordered) {
      try {
        await Promise.all(puts);
        await this.#journalAppend(cbor.encode({ m: next }));
      } catch (e) {
        await Promise.allSettled(puts);
        throw this.#storageError(e, handle);
      }
    } else {
      // Blocks and metadata are committed together (each group-committed);
      // the new length is visible only once both are durable. A crash in
      // between leaves metadata naming blocks that are missing or older,
      // which reads report as corrupt (and the master re-replicates).
      const results = await Promise.allSettled([
        Promise.all(puts),
        this.#journalAppend(cbor.encode({ m: next })),
      ]);
      for (const r of results) {
        if (r.status === "rejected") throw this.#storageError(r.reason, handle);
      }
    }
    this.#meta.set(handle, next);
    return newLength;
  }

  /**
   * Reads `[offset, offset + length)` of a chunk (clipped to its length),
   * verifying every block touched.
   * @throws GfsError `not_found`, `stale` (version given and different),
   *   `corrupt`.
   */
  read(
    handle: number,
    offset: number,
    length: number,
    version?: number,
  ): Promise<Uint8Array> {
    // Serial with writes of the chunk: a write lands its blocks before its
    // metadata, and a read in between would see a block its CRC does not
    // describe yet.
    return this.#serial(handle, () => {
      const m = this.#checked(handle, version);
      const end = Math.min(this.#length(m), offset + length);
      const out = new Uint8Array(Math.max(0, end - offset));
      // Blocks are read into the scratch buffer and copied out at once.
      this.#eachPiece(m, offset, end, this.#scratch, (p, at) => {
        out.set(p, at - offset);
      });
      return Promise.resolve(out);
    });
  }

  /**
   * {@link read} into `out` (at least `length` bytes long) instead of a new
   * buffer, for a caller that reuses its buffers (the bulk port: new memory
   * page-faults on first touch, which cost more than the read).
   * @returns the bytes read (fewer past the chunk's end).
   * @throws GfsError as {@link read}.
   */
  readInto(
    handle: number,
    offset: number,
    length: number,
    version: number | undefined,
    out: Uint8Array,
  ): Promise<number> {
    return this.#whenFree(handle, () => {
      const m = this.#checked(handle, version);
      const end = Math.min(this.#length(m), offset + length);
      this.#eachPiece(m, offset, end, this.#scratch, (p, at) => {
        out.set(p, at - offset);
      });
      return Promise.resolve(Math.max(0, end - offset));
    });
  }

  /**
   * {@link read} as a list of verified pieces (one per block or journaled
   * write touched), for a caller that sends them on: no copy into one
   * buffer.
   * @throws GfsError as {@link read}.
   */
  readParts(
    handle: number,
    offset: number,
    length: number,
    version?: number,
  ): Promise<Uint8Array[]> {
    return this.#serial(handle, () => {
      const m = this.#checked(handle, version);
      const end = Math.min(this.#length(m), offset + length);
      const parts: Uint8Array[] = [];
      // A buffer per block: the parts outlive this call.
      this.#eachPiece(m, offset, end, undefined, (p) => parts.push(p));
      return Promise.resolve(parts);
    });
  }

  /**
   * Calls `fn` with each verified piece of `[offset, end)` of chunk `m` in
   * order, and where it starts: blocks (read into `into` when given), then
   * the tail's journaled writes.
   */
  #eachPiece(
    m: ChunkMeta,
    offset: number,
    end: number,
    into: Uint8Array | undefined,
    fn: (piece: Uint8Array, at: number) => void,
  ): void {
    if (offset >= end) return;
    const blocksEnd = Math.min(end, m.length);
    if (offset < blocksEnd) {
      const first = Math.floor(offset / BLOCK_BYTES);
      const last = Math.floor((blocksEnd - 1) / BLOCK_BYTES);
      for (let b = first; b <= last; b++) {
        const block = this.#readBlock(m, b, into);
        const start = b * BLOCK_BYTES;
        const from = Math.max(start, offset);
        fn(
          block.subarray(
            from - start,
            Math.min(start + block.length, blocksEnd) - start,
          ),
          from,
        );
      }
    }
    const t = this.#tails.get(m.handle);
    if (t === undefined || end <= m.length) return;
    let at = m.length;
    for (const p of t.pieces) {
      const pEnd = at + p.data.length;
      if (pEnd > offset) {
        if (crc32c(p.data) !== p.crc) {
          throw new GfsError(
            "corrupt",
            `chunk ${m.handle}: journaled bytes at ${at} fail their CRC32C`,
          );
        }
        const from = Math.max(at, offset);
        fn(p.data.subarray(from - at, Math.min(pEnd, end) - at), from);
      }
      at = pEnd;
      if (at >= end) break;
    }
  }

  /**
   * Verifies every block of a chunk (the scrubber), folding its journaled
   * bytes into blocks first.
   * @throws GfsError `corrupt` on a mismatch.
   */
  verify(handle: number): Promise<void> {
    return this.#serial(handle, async () => {
      await this.#foldNow(handle);
      const m = this.#meta.get(handle);
      if (m === undefined) return;
      const blocks = Math.ceil(m.length / BLOCK_BYTES);
      for (let b = 0; b < blocks; b++) this.#readBlock(m, b, this.#scratch);
    });
  }

  /** Deletes a chunk (no-op when absent). */
  delete(handle: number): Promise<void> {
    return this.#serial(handle, async () => {
      // An append in flight would put its bytes back into the tail.
      await this.#settle(handle);
      const m = this.#meta.get(handle);
      if (m === undefined) return;
      this.#meta.delete(handle);
      this.#dropTail(handle);
      await this.#journalAppend(cbor.encode({ d: handle }));
      const blocks = Math.ceil(m.length / BLOCK_BYTES);
      for (let b = 0; b < blocks; b++) {
        await this.#volume.delete(handle, b).catch(() => false);
      }
    });
  }

  /** Compacts the volume when over half of it is dead space. */
  async maybeCompact(): Promise<boolean> {
    const live = this.usedBytes;
    if (this.#volume.sizeBytes < 64 * 2 ** 20) return false;
    if (live * 2 > this.#volume.sizeBytes) return false;
    await this.#volume.compact();
    return true;
  }

  /** Closes the volume. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.#locks.values()]);
    await Promise.all([...this.#inFlight.values()].map((f) => f.last));
    await this.#foldingAll?.catch(() => {});
    await this.#checkpointing?.catch(() => {});
    await Promise.allSettled([...this.#locks.values()]);
    await this.#volume.close();
    await this.#journal.close();
    this.#snaps.close();
  }

  /** A chunk's length: folded bytes plus its tail. */
  #length(m: ChunkMeta): number {
    return m.length + (this.#tails.get(m.handle)?.bytes ?? 0);
  }

  #pushTail(handle: number, data: Uint8Array, crc: number): void {
    let t = this.#tails.get(handle);
    if (t === undefined) this.#tails.set(handle, t = { pieces: [], bytes: 0 });
    t.pieces.push({ data, crc });
    t.bytes += data.length;
    this.#tailBytes += data.length;
  }

  #dropTail(handle: number): void {
    const t = this.#tails.get(handle);
    if (t === undefined) return;
    this.#tailBytes -= t.bytes;
    this.#tails.delete(handle);
  }

  #checked(handle: number, version: number | undefined): ChunkMeta {
    const m = this.#meta.get(handle);
    if (m === undefined) throw new GfsError("not_found", `no chunk ${handle}`);
    if (version !== undefined && m.version !== version) {
      throw new GfsError(
        "stale",
        `chunk ${handle} is at version ${m.version}, not ${version}`,
      );
    }
    return m;
  }

  /**
   * A block, verified against its CRC32C (and its needle checksum, derived
   * from the same pass by the volume). With `into`, a view of that buffer.
   */
  #readBlock(m: ChunkMeta, b: number, into?: Uint8Array): Uint8Array {
    let block: Uint8Array;
    const crc = m.crcs[b];
    if (crc === undefined) {
      throw new GfsError("corrupt", `chunk ${m.handle} block ${b} has no CRC`);
    }
    const expect = Math.min(BLOCK_BYTES, m.length - b * BLOCK_BYTES);
    try {
      block = this.#volume.getSync(m.handle, b, m.cookie, {
        into,
        crc32c: crc,
      });
    } catch (e) {
      // A fold that crashed before its metadata record left a longer last
      // block: its first `expect` bytes are still the ones the CRC covers.
      const longer = isStorageError(e, "corrupt")
        ? this.#longerBlock(m, b, expect, crc, into)
        : undefined;
      if (longer === undefined) throw this.#storageError(e, m.handle);
      return longer;
    }
    if (block.length !== expect) {
      throw new GfsError(
        "corrupt",
        `chunk ${m.handle} block ${b} fails its CRC32C`,
      );
    }
    return block.subarray(0, expect);
  }

  /** The block's first `expect` bytes when it is longer and they match `crc`. */
  #longerBlock(
    m: ChunkMeta,
    b: number,
    expect: number,
    crc: number,
    into?: Uint8Array,
  ): Uint8Array | undefined {
    try {
      const block = this.#volume.getSync(m.handle, b, m.cookie, { into });
      if (block.length <= expect) return undefined;
      const prefix = block.subarray(0, expect);
      return crc32c(prefix) === crc ? prefix : undefined;
    } catch {
      return undefined;
    }
  }

  #storageError(e: unknown, handle: number): GfsError {
    if (e instanceof GfsError) return e;
    if (isStorageError(e, "corrupt") || isStorageError(e, "not_found")) {
      return new GfsError(
        "corrupt",
        `chunk ${handle}: ${(e as Error).message}`,
      );
    }
    return new GfsError("internal", `chunk ${handle}: ${String(e)}`);
  }

  async #saveMeta(m: ChunkMeta): Promise<void> {
    await this.#journalAppend(cbor.encode({ m }));
    this.#meta.set(m.handle, m);
  }

  async #journalAppend(rec: Uint8Array): Promise<void> {
    await this.#journal.append([rec]);
    this.#bytesSinceCheckpoint += rec.length;
    if (
      ++this.#sinceCheckpoint >= this.#checkpointEvery ||
      this.#bytesSinceCheckpoint >= JOURNAL_CHECKPOINT_BYTES
    ) {
      this.checkpoint().catch(() => {});
    }
  }

  /**
   * Folds every chunk's journaled bytes into blocks, saves all metadata as
   * a checkpoint and drops the journal it covers. Only durable metadata is
   * saved: in-memory empty chunks and writes in flight are covered by
   * journal records after the checkpoint.
   */
  checkpoint(): Promise<void> {
    if (this.#checkpointing) return this.#checkpointing;
    this.#sinceCheckpoint = 0;
    this.#bytesSinceCheckpoint = 0;
    this.#checkpointing = (async () => {
      // Everything up to `index` is reflected in #meta and #tails once
      // appended writes finish; seal first so the snapshot covers a closed
      // prefix.
      await this.#journal.beginSnapshot();
      const index = this.#journal.durableIndex;
      await Promise.allSettled([...this.#locks.values()]);
      // The snapshot holds no tails: append records up to `index` must be
      // in blocks before the journal holding them goes. A pass already
      // running listed its chunks before the seal: fold again after it.
      await this.#foldingAll?.catch(() => {});
      await this.#foldEvery();
      const metas = [...this.#meta.values()].filter((m) => m.length > 0);
      await this.#snaps.save({
        lastIncludedIndex: index,
        lastIncludedTerm: 0,
        configuration: { voters: [], learners: [] },
      }, cbor.encode(metas));
      await compactToSnapshot(this.#journal, this.#snaps);
    })().finally(() => {
      this.#checkpointing = null;
    });
    return this.#checkpointing;
  }

  /**
   * Runs `fn` (synchronous work that returns a settled promise) at once
   * when nothing is queued on the chunk, else after it as {@link #serial}
   * would: a small read then costs no trip through the microtask queue.
   */
  #whenFree<T>(handle: number, fn: () => Promise<T>): Promise<T> {
    if (this.#locks.has(handle)) return this.#serial(handle, fn);
    try {
      return fn();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  #serial<T>(handle: number, fn: () => Promise<T>): Promise<T> {
    const prev = this.#locks.get(handle) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => {});
    this.#locks.set(handle, tail);
    tail.then(() => {
      if (this.#locks.get(handle) === tail) this.#locks.delete(handle);
    });
    return next;
  }
}
