import { encode as encodeCbor } from "cbor-x";
import { join } from "node:path";
import {
  decodeCbor,
  isCodecError,
  openEnvelope,
  sealEnvelope,
} from "@strata/codec";
import {
  DirLock,
  isAtomicTempName,
  SegmentedLog,
  type SyncPolicy,
  writeFileAtomic,
} from "@strata/storage";
import type { StoredDocument } from "./document.ts";
import {
  buildSegment,
  decodeSegment,
  encodeSegment,
  type Segment,
} from "./segment.ts";
import { SearchError } from "./search_error.ts";
import {
  type SegmentHandle,
  ShardIndex,
  type ShardIndexOptions,
} from "./shard_index.ts";

/** Envelope kind of the manifest file. */
export const MANIFEST_KIND = "SMAN";
const MANIFEST = "MANIFEST";
const WAL_DIR = "wal";

/** Knobs of a {@link ShardStore}. */
export interface ShardStoreOptions extends ShardIndexOptions {
  /** Seal and persist the in-memory segment once it holds this many documents (default 5000). */
  flushDocs?: number;
  /** Merge when there are more segments than this (default 10). */
  maxSegments?: number;
  /** Segments merged at once (the smallest ones; default 10). */
  mergeFactor?: number;
  /** Merge a segment alone once this fraction of it is deleted (default 0.3). */
  expungeRatio?: number;
  /**
   * After this long without a write (ms, default 1000), merge the segments
   * not yet flushed (but not one holding more than half of their
   * documents) into one when the shard has more than `idleMergeSegments`
   * segments.
   */
  idleMergeMs?: number;
  /** See {@link idleMergeMs} (default 4). */
  idleMergeSegments?: number;
  /** When a write is on disk before it is acknowledged (default "always": fsync). */
  sync?: SyncPolicy;
}

/** What {@link ShardStore.open} found on disk. */
export interface ShardRecovery {
  segments: number;
  /** Write-ahead-log records replayed into the in-memory segment. */
  replayed: number;
  /** Bytes of a torn write-ahead-log tail that were cut. */
  droppedBytes: number;
  /** Segment files no manifest referenced (a crash mid-flush or mid-merge), removed. */
  orphansRemoved: number;
}

/** A write: documents to add or replace, ids to delete. */
export interface WriteOps {
  add?: StoredDocument[];
  delete?: string[];
}

function segmentFile(name: number): string {
  return `seg-${String(name).padStart(8, "0")}.sseg`;
}

/**
 * A shard's index on disk. Writes go to a write-ahead log (the storage
 * package's segmented log: CRC32C per record, fsync before the write is
 * acknowledged, torn tails cut on open) and then into the index, whose
 * refreshes make small in-memory segments; once `flushDocs` documents are
 * only in memory, those segments are written as immutable, checksummed
 * segment files, the manifest (segment names and their tombstones, plus
 * the last log index they cover) is replaced atomically, and the covered
 * log segments are deleted. Merges rewrite the
 * smallest segments into one without their deleted documents. A restarted
 * shard loads the manifest's segments and replays the log tail. One
 * process per directory (directory lock).
 */
export class ShardStore {
  readonly index: ShardIndex;
  readonly recovery: ShardRecovery;
  readonly #dir: string;
  readonly #log: SegmentedLog;
  readonly #lock: DirLock;
  readonly #opts: Required<
    Omit<ShardStoreOptions, keyof ShardIndexOptions | "sync">
  >;
  /** Last log index whose effect is in sealed segments + manifest. */
  #covered: number;
  #tail: Promise<unknown> = Promise.resolve();
  #closed = false;
  /** Persisted segments merged away: their files go once a manifest no longer names them. */
  #obsolete: number[] = [];
  /** When the last write arrived or was applied (performance.now()). */
  #lastWrite = performance.now();
  /** Writes arrived and not yet applied (being built or waiting their turn). */
  #pending = 0;
  /** Completed merges, for metrics. */
  merges = 0;
  /** Completed flushes, for metrics. */
  flushes = 0;

  private constructor(
    dir: string,
    log: SegmentedLog,
    lock: DirLock,
    index: ShardIndex,
    covered: number,
    recovery: ShardRecovery,
    options: ShardStoreOptions,
  ) {
    this.#dir = dir;
    this.#log = log;
    this.#lock = lock;
    this.index = index;
    this.#covered = covered;
    this.recovery = recovery;
    this.#opts = {
      flushDocs: options.flushDocs ?? 5000,
      maxSegments: options.maxSegments ?? 10,
      mergeFactor: options.mergeFactor ?? 10,
      expungeRatio: options.expungeRatio ?? 0.3,
      idleMergeMs: options.idleMergeMs ?? 1000,
      idleMergeSegments: options.idleMergeSegments ?? 4,
    };
  }

  /**
   * Opens (or creates) a shard directory and recovers its state.
   * @throws SearchError `corrupt_segment` when a referenced segment or the
   *   manifest fails its checksum (the shard refuses to start rather than
   *   serve without data); StorageError `locked` when another process owns it.
   */
  static async open(
    dir: string,
    options: ShardStoreOptions = {},
  ): Promise<ShardStore> {
    const lock = await DirLock.acquire(dir);
    try {
      const index = new ShardIndex(options);
      let covered = 0;
      const referenced = new Set<string>();
      let manifestBytes: Uint8Array | null = null;
      try {
        manifestBytes = await Deno.readFile(join(dir, MANIFEST));
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
      let segments = 0;
      if (manifestBytes !== null) {
        const m = decodeManifest(manifestBytes);
        covered = m.covered;
        for (const [name, tombstones] of m.segments) {
          const file = segmentFile(name);
          referenced.add(file);
          const seg = decodeSegment(await Deno.readFile(join(dir, file)));
          const deleted = new Uint8Array(seg.docCount);
          for (const d of tombstones) deleted[d] = 1;
          index.attach(name, seg, deleted);
          segments++;
        }
      }
      let orphansRemoved = 0;
      for await (const e of Deno.readDir(dir)) {
        if (
          e.isFile &&
          ((e.name.endsWith(".sseg") && !referenced.has(e.name)) ||
            isAtomicTempName(e.name))
        ) {
          await Deno.remove(join(dir, e.name));
          orphansRemoved++;
        }
      }
      const log = await SegmentedLog.open(join(dir, WAL_DIR), {
        segmentBytes: 4 << 20,
        sync: options.sync ?? "always",
        maxRecordBytes: 64 << 20,
      });
      let replayed = 0;
      const from = Math.max(covered + 1, log.firstIndex);
      if (log.lastIndex >= from) {
        for (const rec of await log.read(from, log.lastIndex + 1)) {
          applyRecord(index, rec);
          replayed++;
        }
      }
      const recovery: ShardRecovery = {
        segments,
        replayed,
        droppedBytes: log.recovery.droppedBytes,
        orphansRemoved,
      };
      return new ShardStore(dir, log, lock, index, covered, recovery, options);
    } catch (e) {
      lock.release();
      throw e;
    }
  }

  /** Runs `fn` after every earlier write, flush and merge. */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(fn, fn);
    this.#tail = run.catch(() => {});
    return run;
  }

  /**
   * Applies a write durably: resolves once it is in the fsynced log and
   * visible to searches. May flush the in-memory segment afterwards.
   * @throws SearchError `unavailable` after close.
   */
  write(ops: WriteOps): Promise<{ added: number; deleted: number }> {
    return this.#writing(() =>
      this.#exclusive(async () => {
        if (this.#closed) {
          throw new SearchError("unavailable", "the shard store is closed");
        }
        const rec = encodeCbor([ops.add ?? [], ops.delete ?? []]);
        await this.#log.append([rec]);
        const result = applyRecord(this.index, rec);
        await this.#maybeFlushLocked();
        return result;
      })
    );
  }

  /** Runs a write, counted as pending (no idle merge) from now until it is applied. */
  async #writing<T>(fn: () => Promise<T>): Promise<T> {
    this.#pending++;
    this.#lastWrite = performance.now();
    try {
      return await fn();
    } finally {
      this.#pending--;
      this.#lastWrite = performance.now();
    }
  }

  /**
   * Applies a write as one segment built here (segment replication's
   * first half): the documents are analysed into a segment, the log
   * record holds the segment's file bytes, and the record is returned so
   * the shard's other replicas can apply it ({@link applyRecord}) without
   * analysing anything. Durable and visible when it resolves, as
   * {@link write}.
   * @throws SearchError `unavailable` after close.
   */
  writeAsSegment(
    ops: WriteOps,
  ): Promise<{ added: number; deleted: number; record: Uint8Array }> {
    return this.#writing(() => this.#writeAsSegment(ops));
  }

  async #writeAsSegment(
    ops: WriteOps,
  ): Promise<{ added: number; deleted: number; record: Uint8Array }> {
    // Last copy of an id wins, in the order the buffer would keep.
    const byId = new Map<string, StoredDocument>();
    for (const d of ops.add ?? []) {
      byId.delete(d.id);
      byId.set(d.id, d);
    }
    const segment = buildSegment([...byId.values()], this.index.analyzer);
    const encoded = encodeSegment(segment);
    const del = ops.delete ?? [];
    const record = encodeCbor([[], del, encoded]);
    return await this.#exclusive(async () => {
      if (this.#closed) {
        throw new SearchError("unavailable", "the shard store is closed");
      }
      await this.#log.append([record]);
      const r = applyParsed(this.index, { add: [], del, segment, encoded });
      await this.#maybeFlushLocked();
      return { ...r, record };
    });
  }

  /**
   * Applies a log record another replica of the shard made
   * ({@link writeAsSegment}): checked (decoded, the segment's checksum
   * verified) before it is logged, then logged as is and applied.
   * @throws SearchError `bad_request` for bytes that are not such a
   *   record; `unavailable` after close.
   */
  applyRecord(
    record: Uint8Array,
  ): Promise<{ added: number; deleted: number }> {
    return this.#writing(() => this.#applyRecord(record));
  }

  async #applyRecord(
    record: Uint8Array,
  ): Promise<{ added: number; deleted: number }> {
    let parsed: ParsedRecord;
    try {
      parsed = parseRecord(record);
    } catch (e) {
      throw new SearchError(
        "bad_request",
        `not a write record: ${e instanceof Error ? e.message : e}`,
      );
    }
    return await this.#exclusive(async () => {
      if (this.#closed) {
        throw new SearchError("unavailable", "the shard store is closed");
      }
      await this.#log.append([record]);
      const r = applyParsed(this.index, parsed);
      await this.#maybeFlushLocked();
      return r;
    });
  }

  async #maybeFlushLocked(): Promise<void> {
    if (this.index.unpersistedCount >= this.#opts.flushDocs) {
      await this.#flushLocked();
    }
  }

  /** Makes buffered documents searchable (a small in-memory segment) without writing files. */
  refresh(): Promise<void> {
    return this.#exclusive(() => Promise.resolve(void this.index.refresh()));
  }

  /** Writes every in-memory segment to a segment file now, then the manifest. */
  flush(): Promise<void> {
    return this.#exclusive(() => this.#flushLocked());
  }

  async #flushLocked(): Promise<void> {
    this.index.refresh();
    // Every write up to here is applied (writes hold the same lock).
    const covered = this.#log.lastIndex;
    for (const h of this.index.segments) {
      if (!h.persisted) {
        await this.#writeSegment(h);
        h.persisted = true;
        h.encoded = undefined;
      }
    }
    await this.#writeManifest(covered);
    for (const name of this.#obsolete) {
      await Deno.remove(join(this.#dir, segmentFile(name))).catch(() => {});
    }
    this.#obsolete = [];
    this.flushes++;
    // Log segments wholly covered by the manifest can go.
    await this.#log.beginSnapshot();
    await this.#log.compactPrefix(covered);
  }

  async #writeSegment(h: SegmentHandle): Promise<void> {
    await writeFileAtomic(
      join(this.#dir, segmentFile(h.name)),
      h.encoded ?? encodeSegment(h.segment),
    );
  }

  async #writeManifest(covered: number): Promise<void> {
    const segments = this.index.segments.map((h) => {
      const t: number[] = [];
      for (let d = 0; d < h.deleted.length; d++) {
        if (h.deleted[d] === 1) t.push(d);
      }
      return [h.name, Uint32Array.from(t)];
    });
    const bytes = sealEnvelope(
      MANIFEST_KIND,
      1,
      encodeCbor([covered, segments]),
    );
    await writeFileAtomic(join(this.#dir, MANIFEST), bytes);
    this.#covered = covered;
  }

  /**
   * One step of the merge policy: merges a heavily deleted segment alone,
   * or the `mergeFactor` smallest when there are more than `maxSegments`,
   * or, once no write has arrived or been pending for `idleMergeMs` and
   * there are more than `idleMergeSegments` segments, the segments not yet
   * flushed (about `flushDocs` documents at most), except one holding more
   * than half of their documents. Reason for the last: a
   * bulk load written as a few big writes leaves several segments below
   * `maxSegments`, and each costs every query a lookup per term; merging
   * them while writes go on would rewrite them again and again.
   * @returns whether it merged.
   */
  maybeMerge(): Promise<boolean> {
    return this.#exclusive(async () => {
      if (this.#closed) return false;
      const segs = this.index.segments;
      let chosen: number[] = [];
      const heavy = segs.find((h) =>
        h.segment.docCount > 0 &&
        h.deletedCount / h.segment.docCount >= this.#opts.expungeRatio
      );
      if (heavy) chosen = [heavy.name];
      else if (segs.length > this.#opts.maxSegments) {
        chosen = [...segs].sort((a, b) =>
          a.segment.docCount - b.segment.docCount
        )
          .slice(0, this.#opts.mergeFactor).map((h) => h.name);
      } else if (
        segs.length > this.#opts.idleMergeSegments && this.#pending === 0 &&
        performance.now() - this.#lastWrite >= this.#opts.idleMergeMs
      ) {
        // Segments not yet flushed, but none holding more than half of
        // their documents: a trickle of small writes then merges the small
        // ones instead of rewriting a big one each time.
        const fresh = segs.filter((h) => !h.persisted);
        let docs = 0;
        for (const h of fresh) docs += h.segment.docCount;
        const small = fresh.filter((h) => 2 * h.segment.docCount <= docs);
        if (small.length > 1) chosen = small.map((h) => h.name);
      }
      if (chosen.length === 0) return false;
      const persisted = segs.filter((h) =>
        chosen.includes(h.name) && h.persisted
      ).map((h) => h.name);
      this.index.merge(chosen);
      this.merges++;
      // Merging only in-memory segments needs no disk work until the next flush.
      if (persisted.length > 0) {
        this.#obsolete.push(...persisted);
        await this.#flushLocked();
      }
      return true;
    });
  }

  /** Flushes, closes the log and releases the directory. */
  close(): Promise<void> {
    return this.#exclusive(async () => {
      if (this.#closed) return;
      await this.#flushLocked();
      this.#closed = true;
      await this.#log.close();
      this.#lock.release();
    });
  }
}

/**
 * A log record: `[add, delete]` (documents to analyse here), or
 * `[[], delete, segment file bytes]` (a write already built into a
 * segment, by this replica or another: segment replication).
 */
interface ParsedRecord {
  add: StoredDocument[];
  del: string[];
  segment?: Segment;
  encoded?: Uint8Array;
}

function parseRecord(rec: Uint8Array): ParsedRecord {
  const raw = decodeCbor(rec);
  if (
    !Array.isArray(raw) || (raw.length !== 2 && raw.length !== 3) ||
    !Array.isArray(raw[0]) || !Array.isArray(raw[1]) ||
    !raw[1].every((id: unknown) => typeof id === "string")
  ) throw new SearchError("corrupt_segment", "a log record has a bad shape");
  if (raw.length === 2) return { add: raw[0], del: raw[1] };
  if (!(raw[2] instanceof Uint8Array) || raw[0].length !== 0) {
    throw new SearchError(
      "corrupt_segment",
      "a segment record has a bad shape",
    );
  }
  return {
    add: [],
    del: raw[1],
    segment: decodeSegment(raw[2]),
    encoded: raw[2],
  };
}

function applyParsed(
  index: ShardIndex,
  rec: ParsedRecord,
): { added: number; deleted: number } {
  let added = rec.add.length;
  if (rec.segment !== undefined) {
    index.addSegment(rec.segment, rec.encoded);
    added = rec.segment.docCount;
  } else if (added > 0) index.add(rec.add);
  let deleted = 0;
  for (const id of rec.del) if (index.delete(id)) deleted++;
  return { added, deleted };
}

function applyRecord(
  index: ShardIndex,
  rec: Uint8Array,
): { added: number; deleted: number } {
  return applyParsed(index, parseRecord(rec));
}

function decodeManifest(
  bytes: Uint8Array,
): { covered: number; segments: Array<[number, Uint32Array]> } {
  try {
    const { payload } = openEnvelope(bytes, MANIFEST_KIND, [1]);
    const raw = decodeCbor(payload);
    if (
      Array.isArray(raw) && raw.length === 2 && Number.isSafeInteger(raw[0]) &&
      Array.isArray(raw[1]) &&
      raw[1].every((s: unknown) =>
        Array.isArray(s) && Number.isSafeInteger(s[0]) &&
        s[1] instanceof Uint32Array
      )
    ) return { covered: raw[0], segments: raw[1] };
    throw new SearchError("corrupt_segment", "the manifest has a bad shape");
  } catch (e) {
    if (isCodecError(e)) {
      throw new SearchError("corrupt_segment", `bad manifest: ${e.message}`, {
        cause: e,
      });
    }
    throw e;
  }
}
