import { join } from "node:path";
import { crc32c, decodeCbor } from "@strata/codec";
import {
  compactToSnapshot,
  isStorageError,
  needleBytes,
  NeedleVolume,
  SegmentedLog,
  SnapshotStore,
  type SyncPolicy,
} from "@strata/storage";
import { Encoder } from "cbor-x";
import { z } from "zod";
import { GfsError } from "../shared/gfs_error.ts";

/** Bytes per checksummed block (the GFS paper's 64 KiB). */
export const BLOCK_BYTES = 64 * 1024;
/** Journal records between metadata checkpoints. */
const JOURNAL_CHECKPOINT_EVERY = 4096;
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

/** What a chunkserver knows of one chunk it stores. */
export type ChunkMeta = z.infer<typeof MetaSchema>;

/** Options of {@link ChunkStore.open}. */
export interface ChunkStoreOptions {
  /** Largest chunk, bytes (the master's chunk size). */
  chunkBytes: number;
  /** Sync policy of the volume and metadata journal (default "always"). */
  sync?: SyncPolicy;
  /** Journal records between metadata checkpoints (default 4096). */
  checkpointEvery?: number;
}

/**
 * Chunk replicas on one chunkserver. Data lives in a Haystack needle volume
 * as one needle per 64 KiB block (key = chunk handle, alternate key = block
 * number), so an append rewrites only the last block. Each chunk's version,
 * length and per-block CRC32C live in a metadata journal (a segmented log,
 * checkpointed into a snapshot every few thousand records); a write appends
 * its metadata record while its blocks are written, both group-committed,
 * and the new length becomes visible only once both are durable. Every
 * read verifies the CRC32C
 * of every block it touches (and the needle checksum underneath); a
 * mismatch throws `corrupt` and the caller drops the replica.
 */
export class ChunkStore {
  readonly #volume: NeedleVolume;
  readonly #journal: SegmentedLog;
  readonly #snaps: SnapshotStore;
  readonly #meta = new Map<number, ChunkMeta>();
  readonly #locks = new Map<number, Promise<unknown>>();
  /** One needle's worth: reads are synchronous, so one buffer serves all. */
  readonly #scratch = new Uint8Array(needleBytes(BLOCK_BYTES));
  #sinceCheckpoint = 0;
  #checkpointing: Promise<void> | null = null;
  #checkpointEvery = JOURNAL_CHECKPOINT_EVERY;
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
   * metadata is the newest checkpoint plus the journal after it.
   * @throws StorageError `locked` when another process has the directory,
   *   `corrupt` when the journal is damaged before its tail.
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
    const journal = await SegmentedLog.open(join(dir, "journal"), { sync });
    const store = new ChunkStore(volume, journal, snaps, options.chunkBytes);
    store.#checkpointEvery = options.checkpointEvery ??
      JOURNAL_CHECKPOINT_EVERY;
    const { snapshot } = await snaps.loadNewest();
    let from = journal.firstIndex;
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
      for (const r of recs) {
        const rec = JournalRecord.parse(decodeCbor(r, false));
        if ("m" in rec) store.#meta.set(rec.m.handle, rec.m);
        else store.#meta.delete(rec.d);
      }
    }
    return store;
  }

  /** Bytes of chunk data stored. */
  get usedBytes(): number {
    let n = 0;
    for (const m of this.#meta.values()) n += m.length;
    return n;
  }

  /** Every chunk held: [handle, version, length]. */
  list(): [number, number, number][] {
    return [...this.#meta.values()].map((m) => [m.handle, m.version, m.length]);
  }

  /** Metadata of a chunk, or undefined. */
  meta(handle: number): Readonly<ChunkMeta> | undefined {
    return this.#meta.get(handle);
  }

  /**
   * Creates an empty chunk at `version`, or moves an existing one to
   * `version` (a version bump before a new lease).
   * @throws GfsError `not_found` (absent and not `create`), `stale` (the
   *   chunk already has a newer version).
   */
  setVersion(handle: number, version: number, create: boolean): Promise<void> {
    return this.#serial(handle, async () => {
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
        if (m.length === 0) this.#meta.set(handle, { ...m, version });
        else await this.#saveMeta({ ...m, version });
      }
    });
  }

  /**
   * Writes `data` at `offset` (zero-padding a gap past the end) into a
   * chunk at `version`; serial per chunk.
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
    return this.#serial(handle, async () => {
      const m = this.#checked(handle, version);
      if (offset > m.length) {
        const padded = new Uint8Array(offset - m.length + data.length);
        padded.set(data, offset - m.length);
        data = padded;
        offset = m.length;
      }
      const end = offset + data.length;
      if (end > this.chunkBytes) {
        throw new GfsError(
          "too_large",
          `write to ${end} passes the chunk size ${this.chunkBytes}`,
        );
      }
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
      // Blocks and metadata are committed together (each group-committed);
      // the new length is visible only once both are durable. A crash in
      // between leaves metadata naming blocks that are missing or older,
      // which reads report as corrupt (and the master re-replicates).
      const next = { ...m, length: newLength, crcs };
      const results = await Promise.allSettled([
        Promise.all(puts),
        this.#journalAppend({ m: next }),
      ]);
      for (const r of results) {
        if (r.status === "rejected") throw this.#storageError(r.reason, handle);
      }
      this.#meta.set(handle, next);
      return newLength;
    });
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
    return this.#serial(
      handle,
      () => Promise.resolve(this.#readNow(handle, offset, length, version)),
    );
  }

  /**
   * {@link read} as a list of verified pieces (one per block touched), for
   * a caller that sends them on: no copy into one buffer.
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
      const end = Math.min(m.length, offset + length);
      const parts: Uint8Array[] = [];
      if (offset >= end) return Promise.resolve(parts);
      const first = Math.floor(offset / BLOCK_BYTES);
      const last = Math.floor((end - 1) / BLOCK_BYTES);
      for (let b = first; b <= last; b++) {
        // A buffer per block: the parts outlive this call.
        const block = this.#readBlock(m, b);
        const start = b * BLOCK_BYTES;
        parts.push(
          block.subarray(
            Math.max(start, offset) - start,
            Math.min(start + block.length, end) - start,
          ),
        );
      }
      return Promise.resolve(parts);
    });
  }

  #readNow(
    handle: number,
    offset: number,
    length: number,
    version?: number,
  ): Uint8Array {
    const m = this.#checked(handle, version);
    const end = Math.min(m.length, offset + length);
    if (offset >= end) return new Uint8Array(0);
    const out = new Uint8Array(end - offset);
    const first = Math.floor(offset / BLOCK_BYTES);
    const last = Math.floor((end - 1) / BLOCK_BYTES);
    for (let b = first; b <= last; b++) {
      // Read into the scratch buffer: the block is copied out right away.
      const block = this.#readBlock(m, b, this.#scratch);
      const start = b * BLOCK_BYTES;
      const from = Math.max(start, offset);
      const to = Math.min(start + block.length, end);
      out.set(block.subarray(from - start, to - start), from - offset);
    }
    return out;
  }

  /**
   * Verifies every block of a chunk (the scrubber).
   * @throws GfsError `corrupt` on a mismatch.
   */
  verify(handle: number): Promise<void> {
    return this.#serial(handle, () => {
      const m = this.#meta.get(handle);
      if (m === undefined) return Promise.resolve();
      const blocks = Math.ceil(m.length / BLOCK_BYTES);
      for (let b = 0; b < blocks; b++) this.#readBlock(m, b, this.#scratch);
      return Promise.resolve();
    });
  }

  /** Deletes a chunk (no-op when absent). */
  delete(handle: number): Promise<void> {
    return this.#serial(handle, async () => {
      const m = this.#meta.get(handle);
      if (m === undefined) return;
      this.#meta.delete(handle);
      await this.#journalAppend({ d: handle });
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
    await this.#checkpointing?.catch(() => {});
    await this.#volume.close();
    await this.#journal.close();
    this.#snaps.close();
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
    try {
      block = this.#volume.getSync(m.handle, b, m.cookie, {
        into,
        crc32c: crc,
      });
    } catch (e) {
      throw this.#storageError(e, m.handle);
    }
    const expect = Math.min(BLOCK_BYTES, m.length - b * BLOCK_BYTES);
    if (block.length !== expect) {
      throw new GfsError(
        "corrupt",
        `chunk ${m.handle} block ${b} fails its CRC32C`,
      );
    }
    return block.subarray(0, expect);
  }

  #storageError(e: unknown, handle: number): GfsError {
    if (isStorageError(e, "corrupt") || isStorageError(e, "not_found")) {
      return new GfsError(
        "corrupt",
        `chunk ${handle}: ${(e as Error).message}`,
      );
    }
    return new GfsError("internal", `chunk ${handle}: ${String(e)}`);
  }

  async #saveMeta(m: ChunkMeta): Promise<void> {
    await this.#journalAppend({ m });
    this.#meta.set(m.handle, m);
  }

  async #journalAppend(rec: z.infer<typeof JournalRecord>): Promise<void> {
    await this.#journal.append([cbor.encode(rec)]);
    if (++this.#sinceCheckpoint >= this.#checkpointEvery) {
      this.checkpoint().catch(() => {});
    }
  }

  /**
   * Saves all metadata as a checkpoint and drops the journal it covers.
   * Only durable metadata is saved: in-memory empty chunks and writes in
   * flight are covered by journal records after the checkpoint.
   */
  checkpoint(): Promise<void> {
    if (this.#checkpointing) return this.#checkpointing;
    this.#sinceCheckpoint = 0;
    this.#checkpointing = (async () => {
      // Everything up to `index` is reflected in #meta once appended
      // writes finish; seal first so the snapshot covers a closed prefix.
      await this.#journal.beginSnapshot();
      const index = this.#journal.durableIndex;
      await Promise.allSettled([...this.#locks.values()]);
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
