import {
  crc32c,
  ENVELOPE_HEADER_BYTES,
  ENVELOPE_TRAILER_BYTES,
  readVarint,
} from "@strata/codec";
import { bloomMayContainHash, hashKey } from "./bloom.ts";
import {
  BLOCK_TRAILER_BYTES,
  blockLowerBound,
  compareKeyAt,
  decodeBlock,
  keyAt,
  valueAt,
} from "./block.ts";
import { BlockIndex } from "./block_index.ts";
import type { DecodedBlock } from "./block.ts";
import type { BlockCache } from "./block_cache.ts";
import { compareBytes } from "./bytes.ts";
import type { ReadableFile } from "./file_store.ts";
import { LsmError } from "./lsm_error.ts";
import type { Entry, Value } from "./memtable.ts";
import {
  FOOTER_BYTES,
  FOOTER_MAGIC,
  FOOTER_V2_BYTES,
  SSTABLE_KIND,
  SSTABLE_VERSION,
  SSTABLE_VERSION_PREFIX,
} from "./sstable_builder.ts";

/**
 * The key range `[start, end)` a table is read through: a table shared
 * with a sibling store (the halves of a tablet split each read their own
 * side of the parent's files) shows only the entries in it.
 */
export interface KeyClip {
  /** Inclusive lower bound (none: from the first key). */
  start?: Uint8Array;
  /** Exclusive upper bound (none: to the last key). */
  end?: Uint8Array;
}

/**
 * An open, immutable SSTable: its index and Bloom filter in memory, data
 * blocks read on demand through the {@link BlockCache}, each block's
 * CRC32C checked when it is read from the file. Reference counted, so a
 * compaction can retire a table while reads and scans still use it; the
 * file is closed (and the `onDrop` hook run) when the last one ends.
 */
export class SSTable {
  /** Table id (unique in the store, also the block cache key). */
  readonly id: number;
  /** File name in the store. */
  readonly name: string;
  /** Entries (tombstones included). */
  readonly entries: number;
  /** File size in bytes. */
  readonly size: number;
  /** Smallest and largest key. */
  readonly smallest: Uint8Array;
  readonly largest: Uint8Array;
  /** Only the entries in this range are seen (undefined: all of them). */
  readonly clip: KeyClip | undefined;
  #file: ReadableFile;
  #cache: BlockCache;
  #lastKeys: Uint8Array[];
  /** Searches {@link #lastKeys} (a block's last key is its index key). */
  #index: BlockIndex;
  #offsets: number[];
  #lengths: number[];
  #bloom: Uint8Array;
  /** The prefix filter and its extractor's name (version 2 tables). */
  #prefixBloom: Uint8Array | undefined;
  #prefixName: string | undefined;
  #refs = 1;
  #clippedSize: number | undefined;
  #onDrop: (() => void) | undefined;

  private constructor(
    id: number,
    name: string,
    file: ReadableFile,
    cache: BlockCache,
    parts: {
      entries: number;
      first: Uint8Array;
      lastKeys: Uint8Array[];
      offsets: number[];
      lengths: number[];
      bloom: Uint8Array;
      prefix?: { name: string; bloom: Uint8Array };
    },
    clip: KeyClip | undefined,
  ) {
    this.id = id;
    this.clip = clip;
    this.name = name;
    this.#file = file;
    this.size = file.size;
    this.#cache = cache;
    this.entries = parts.entries;
    this.smallest = parts.first;
    this.#lastKeys = parts.lastKeys;
    this.#index = new BlockIndex(parts.lastKeys);
    this.#offsets = parts.offsets;
    this.#lengths = parts.lengths;
    this.#bloom = parts.bloom;
    this.#prefixBloom = parts.prefix?.bloom;
    this.#prefixName = parts.prefix?.name;
    this.largest = parts.lastKeys[parts.lastKeys.length - 1] ??
      new Uint8Array(0);
  }

  /**
   * Opens a table: checks the envelope header, the footer's and the index
   * and filter blocks' checksums. With `clip`, only the entries in that
   * range are seen.
   *
   * @throws LsmError `corrupt` naming the file and what failed.
   */
  static async open(
    id: number,
    name: string,
    file: ReadableFile,
    cache: BlockCache,
    clip?: KeyClip,
  ): Promise<SSTable> {
    const steps = SSTable.#opening(id, name, file, cache, clip);
    let r = steps.next();
    while (!r.done) {
      r = steps.next(await file.read(r.value.offset, r.value.length));
    }
    return r.value;
  }

  /**
   * {@link open} in the caller's turn, for a file with `readSync` (a
   * table just written to local disk, installed before the event loop
   * turns).
   *
   * @throws LsmError `corrupt` as {@link open}; TypeError when the file
   *   has no `readSync`.
   */
  static openNow(
    id: number,
    name: string,
    file: ReadableFile,
    cache: BlockCache,
    clip?: KeyClip,
  ): SSTable {
    const readSync = file.readSync;
    if (readSync === undefined) {
      throw new TypeError(`SSTable ${name}: the file has no readSync`);
    }
    const steps = SSTable.#opening(id, name, file, cache, clip);
    let r = steps.next();
    while (!r.done) {
      r = steps.next(readSync.call(file, r.value.offset, r.value.length));
    }
    return r.value;
  }

  /**
   * The checks and parsing of {@link open}, one logic for both ways of
   * reading: each `yield` asks for a byte range of the file and is
   * answered with its bytes.
   */
  static *#opening(
    id: number,
    name: string,
    file: ReadableFile,
    cache: BlockCache,
    clip: KeyClip | undefined,
  ): Generator<{ offset: number; length: number }, SSTable, Uint8Array> {
    const bad = (what: string): LsmError =>
      new LsmError("corrupt", `SSTable ${name}: ${what}`);
    const size = file.size;
    if (size < ENVELOPE_HEADER_BYTES + FOOTER_BYTES + ENVELOPE_TRAILER_BYTES) {
      throw bad(`file too short (${size} bytes)`);
    }
    const head = yield { offset: 0, length: ENVELOPE_HEADER_BYTES };
    const hv = new DataView(head.buffer, head.byteOffset, head.length);
    const kind = new TextDecoder().decode(head.subarray(0, 4));
    if (kind !== SSTABLE_KIND) throw bad(`not an SSTable (kind ${kind})`);
    const version = hv.getUint16(4, true);
    if (version !== SSTABLE_VERSION && version !== SSTABLE_VERSION_PREFIX) {
      throw bad(`unsupported version ${version}`);
    }
    // Version 2 has a longer footer (it also locates the prefix filter).
    const footerBytes = version === SSTABLE_VERSION
      ? FOOTER_BYTES
      : FOOTER_V2_BYTES;
    if (
      size < ENVELOPE_HEADER_BYTES + footerBytes + ENVELOPE_TRAILER_BYTES
    ) {
      throw bad(`file too short (${size} bytes)`);
    }
    const payloadLen = hv.getUint32(8, true) +
      hv.getUint32(12, true) * 2 ** 32;
    if (payloadLen + ENVELOPE_HEADER_BYTES + ENVELOPE_TRAILER_BYTES !== size) {
      throw bad(`length ${payloadLen} does not match file size ${size}`);
    }
    const footerAt = size - ENVELOPE_TRAILER_BYTES - footerBytes;
    const footer = yield { offset: footerAt, length: footerBytes };
    const fv = new DataView(footer.buffer, footer.byteOffset, footer.length);
    const c = footerBytes - 4;
    if (
      fv.getUint32(0, true) !== FOOTER_MAGIC ||
      crc32c(footer.subarray(0, c)) !== fv.getUint32(c, true)
    ) {
      throw bad("footer checksum mismatch");
    }
    const indexOffset = fv.getFloat64(4, true);
    const indexLen = fv.getUint32(12, true);
    const bloomOffset = fv.getFloat64(16, true);
    const bloomLen = fv.getUint32(24, true);
    const entries = fv.getFloat64(28, true);
    const inFile = (o: number, l: number) =>
      Number.isSafeInteger(o) && o >= ENVELOPE_HEADER_BYTES &&
      l >= BLOCK_TRAILER_BYTES && o + l <= footerAt;
    const prefixOffset = version === SSTABLE_VERSION
      ? undefined
      : fv.getFloat64(36, true);
    const prefixLen = prefixOffset === undefined ? 0 : fv.getUint32(44, true);
    if (
      !inFile(indexOffset, indexLen) || !inFile(bloomOffset, bloomLen) ||
      (prefixOffset !== undefined && !inFile(prefixOffset, prefixLen))
    ) {
      throw bad("footer offsets out of range");
    }
    const index = checked(
      yield { offset: indexOffset, length: indexLen },
      () => bad("index block checksum mismatch"),
    );
    const bloom = checked(
      yield { offset: bloomOffset, length: bloomLen },
      () => bad("bloom filter checksum mismatch"),
    );
    let prefix: { name: string; bloom: Uint8Array } | undefined;
    if (prefixOffset !== undefined) {
      const block = checked(
        yield { offset: prefixOffset, length: prefixLen },
        () => bad("prefix filter checksum mismatch"),
      );
      try {
        const r = readVarint(block, 0);
        if (r.next + r.value > block.length) throw new Error("name length");
        prefix = {
          name: new TextDecoder("utf-8", { fatal: true }).decode(
            block.subarray(r.next, r.next + r.value),
          ),
          bloom: block.subarray(r.next + r.value),
        };
      } catch (e) {
        throw new LsmError(
          "corrupt",
          `SSTable ${name}: prefix filter block invalid`,
          { cause: e },
        );
      }
    }
    const lastKeys: Uint8Array[] = [];
    const offsets: number[] = [];
    const lengths: number[] = [];
    let first: Uint8Array;
    try {
      let r = readVarint(index, 0);
      const count = r.value;
      r = readVarint(index, r.next);
      first = index.slice(r.next, r.next + r.value);
      let o = r.next + r.value;
      for (let i = 0; i < count; i++) {
        r = readVarint(index, o);
        lastKeys.push(index.slice(r.next, r.next + r.value));
        r = readVarint(index, r.next + r.value);
        offsets.push(r.value);
        r = readVarint(index, r.next);
        lengths.push(r.value);
        o = r.next;
        if (!inFile(offsets[i]!, lengths[i]!)) throw new Error("block range");
      }
    } catch (e) {
      throw new LsmError("corrupt", `SSTable ${name}: index block invalid`, {
        cause: e,
      });
    }
    return new SSTable(id, name, file, cache, {
      entries,
      first,
      lastKeys,
      offsets,
      lengths,
      bloom,
      ...(prefix !== undefined ? { prefix } : {}),
    }, clip);
  }

  /** The last key of each data block, in order (block boundaries, e.g. to pick a split point). */
  get blockLastKeys(): readonly Uint8Array[] {
    return this.#lastKeys;
  }

  /**
   * About how many of the file's bytes hold keys in {@link clip}: the size
   * times the share of data blocks that overlap it (the whole size
   * without a clip).
   */
  get clippedSize(): number {
    // Computed once: the clip never changes (stats are read on every
    // report to the master).
    this.#clippedSize ??= this.#sizeInClip();
    return this.#clippedSize;
  }

  #sizeInClip(): number {
    const c = this.clip;
    const n = this.#lastKeys.length;
    if (c === undefined || n === 0) return this.size;
    let blocks = 0;
    for (let b = 0; b < n; b++) {
      const first = b === 0 ? this.smallest : this.#lastKeys[b - 1]!;
      if (
        c.start !== undefined && compareBytes(this.#lastKeys[b]!, c.start) < 0
      ) continue;
      if (c.end !== undefined && compareBytes(first, c.end) >= 0) break;
      blocks++;
    }
    return Math.round(this.size * blocks / n);
  }

  /** Number of data blocks. */
  get blockCount(): number {
    return this.#offsets.length;
  }

  /** False when the table certainly lacks `key` (key range, Bloom filter). */
  mayContain(key: Uint8Array, hash: number = hashKey(key)): boolean {
    if (this.#offsets.length === 0) return false;
    if (compareBytes(key, this.smallest) < 0) return false;
    if (compareBytes(key, this.largest) > 0) return false;
    const c = this.clip;
    if (
      c !== undefined && (
        (c.start !== undefined && compareBytes(key, c.start) < 0) ||
        (c.end !== undefined && compareBytes(key, c.end) >= 0)
      )
    ) return false;
    return bloomMayContainHash(this.#bloom, hash);
  }

  /**
   * The name of the extractor whose prefix filter this table holds
   * (undefined: none, e.g. a version 1 table).
   */
  get prefixExtractorName(): string | undefined {
    return this.#prefixName;
  }

  /**
   * False when the table certainly holds no key with prefix `hash` (the
   * {@link hashKey} of a prefix that extractor `name` gives): only a
   * table with a prefix filter built by that extractor can say so.
   */
  mayContainPrefix(name: string, hash: number): boolean {
    const bloom = this.#prefixBloom;
    if (bloom === undefined || name !== this.#prefixName) return true;
    return bloomMayContainHash(bloom, hash);
  }

  /**
   * The value of `key`: bytes, `null` for a tombstone, undefined when the
   * table has no entry for it.
   *
   * @throws LsmError `corrupt` when the block fails its checksum.
   */
  async get(key: Uint8Array): Promise<Value | undefined> {
    return await this.lookup(key);
  }

  /**
   * {@link get} without a promise when the answer is at hand (filtered
   * out, or the block is cached): a point read that hits the cache then
   * costs no turn of the event loop. A promise only when a block must be
   * read.
   */
  lookup(
    key: Uint8Array,
    hash: number = hashKey(key),
  ): Value | undefined | Promise<Value | undefined> {
    if (!this.mayContain(key, hash)) return undefined;
    const b = this.#index.lowerBound(key);
    if (b >= this.#offsets.length) return undefined;
    const block = this.#cache.get(this.id, b) ?? this.#read(b);
    if (!(block instanceof Promise)) return find(block, key);
    return block.then((x) => find(x, key));
  }

  /**
   * Entries with key `>= start` (and `< end`, when given) in key order
   * (tombstones included), as a cursor whose `next` answers without a
   * promise while blocks come from the cache or a synchronous file. The
   * end is checked in place, so the entry past it costs no views.
   */
  iterate(start?: Uint8Array, end?: Uint8Array): TableCursor {
    const from = this.clip?.start;
    if (
      from !== undefined &&
      (start === undefined || compareBytes(start, from) < 0)
    ) {
      start = from;
    }
    const to = this.clip?.end;
    if (to !== undefined && (end === undefined || compareBytes(to, end) < 0)) {
      end = to;
    }
    return new TableCursor(this, start, end);
  }

  /** Block `b` if cached (counts a hit or miss). */
  cachedBlock(b: number): DecodedBlock | undefined {
    return this.#cache.get(this.id, b);
  }

  /** First block that may hold keys `>= key`. */
  seekBlock(key: Uint8Array): number {
    return this.#index.lowerBound(key);
  }

  /**
   * Reads, checks and caches block `b`; without a promise when the file
   * reads synchronously (a local file).
   *
   * @throws LsmError `corrupt` (or a rejected promise) on a bad block.
   */
  readBlock(b: number): DecodedBlock | Promise<DecodedBlock> {
    return this.#read(b);
  }

  /**
   * Reads the whole file and checks the envelope's CRC32C (every byte).
   *
   * @throws LsmError `corrupt` on a mismatch.
   */
  async verify(): Promise<void> {
    const all = await this.#file.read(0, this.size);
    const end = this.size - ENVELOPE_TRAILER_BYTES;
    const want = new DataView(all.buffer, all.byteOffset, all.length)
      .getUint32(end, true);
    if (all.length !== this.size || crc32c(all.subarray(0, end)) !== want) {
      throw new LsmError(
        "corrupt",
        `SSTable ${this.name}: file checksum mismatch`,
      );
    }
  }

  /**
   * Reads, checks and caches block `b` (after a cache miss): in this turn
   * when the file has `readSync` (no promise chain per block), else
   * through a promise.
   */
  #read(b: number): DecodedBlock | Promise<DecodedBlock> {
    const offset = this.#offsets[b]!;
    const length = this.#lengths[b]!;
    const file = this.#file;
    if (file.readSync !== undefined) {
      return this.#decode(b, file.readSync(offset, length));
    }
    return file.read(offset, length).then((raw) => this.#decode(b, raw));
  }

  #decode(b: number, raw: Uint8Array): DecodedBlock {
    const block = decodeBlock(
      raw,
      () =>
        `SSTable ${this.name} data block ${b} at offset ${this.#offsets[b]}`,
    );
    this.#cache.set(this.id, b, block);
    return block;
  }

  /** Takes a reference (a read or scan in progress). */
  ref(): void {
    this.#refs++;
  }

  /** Drops a reference; the last one closes the file and runs `onDrop`. */
  unref(): void {
    if (--this.#refs === 0) {
      this.#file.close();
      this.#cache.evictTable(this.id);
      this.#onDrop?.();
    }
  }

  /**
   * Drops the store's own reference once the table is no longer live;
   * `onDrop` runs when the last reader is done (delete the file there).
   */
  retire(onDrop?: () => void): void {
    this.#onDrop = onDrop;
    this.unref();
  }
}

/** A positioned iteration over one table (see {@link SSTable.iterate}). */
export class TableCursor {
  #table: SSTable;
  #start: Uint8Array | undefined;
  #b: number;
  #i = 0;
  #block: DecodedBlock | undefined;
  /** Where the cursor ends (exclusive): the range's end or the table's clip end. */
  #end: Uint8Array | undefined;

  /**
   * @param start first key wanted (inclusive);
   * @param end first key not wanted (default: the table's clip end).
   */
  constructor(table: SSTable, start?: Uint8Array, end = table.clip?.end) {
    this.#table = table;
    this.#end = end;
    this.#start = start;
    this.#b = start === undefined ? 0 : table.seekBlock(start);
  }

  /**
   * The next entry (undefined at the end), as an `EntryCursor`: no
   * iterator result object per entry; a promise only when a block must
   * be read from a file without `readSync`.
   */
  next(): Entry | undefined | Promise<Entry | undefined> {
    while (true) {
      const block = this.#block;
      if (block !== undefined) {
        if (this.#i < block.count) {
          const i = this.#i++;
          if (
            this.#end !== undefined && compareKeyAt(block, i, this.#end) >= 0
          ) {
            this.#b = this.#table.blockCount;
            this.#block = undefined;
            return undefined;
          }
          return { key: keyAt(block, i), value: valueAt(block, i) };
        }
        this.#block = undefined;
        this.#b++;
      }
      if (this.#b >= this.#table.blockCount) return undefined;
      const b = this.#table.cachedBlock(this.#b) ??
        this.#table.readBlock(this.#b);
      if (b instanceof Promise) {
        return b.then((x) => {
          this.#enter(x);
          return this.next();
        });
      }
      this.#enter(b);
    }
  }

  /** The remaining entries as an async iterator (`for await`). */
  async *[Symbol.asyncIterator](): AsyncGenerator<Entry> {
    while (true) {
      const e = await this.next();
      if (e === undefined) return;
      yield e;
    }
  }

  #enter(block: DecodedBlock): void {
    this.#block = block;
    this.#i = this.#start === undefined
      ? 0
      : blockLowerBound(block, this.#start);
    // Only the first block needs the seek.
    this.#start = undefined;
  }
}

function find(block: DecodedBlock, key: Uint8Array): Value | undefined {
  const i = blockLowerBound(block, key);
  if (i < block.count && compareKeyAt(block, i, key) === 0) {
    return valueAt(block, i);
  }
  return undefined;
}

function checked(raw: Uint8Array, err: () => LsmError): Uint8Array {
  const n = raw.length - BLOCK_TRAILER_BYTES;
  if (n < 0) throw err();
  const want = new DataView(raw.buffer, raw.byteOffset, raw.length)
    .getUint32(n, true);
  if (crc32c(raw.subarray(0, n)) !== want) throw err();
  return raw.subarray(0, n);
}
