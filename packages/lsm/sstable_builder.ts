import {
  crc32c,
  ENVELOPE_HEADER_BYTES,
  ENVELOPE_TRAILER_BYTES,
  envelopeHeader,
  varintLength,
  writeVarint,
} from "@strata/codec";
import {
  buildBloomFromHashes,
  finishHash,
  HASH_START,
  hashRange,
} from "./bloom.ts";
import { BLOCK_TRAILER_BYTES, encodeBlock, entryBytes } from "./block.ts";
import { compareBytes } from "./bytes.ts";
import type { Entry, Value } from "./memtable.ts";
import type { PrefixExtractor } from "./prefix_extractor.ts";

/** File envelope kind of an SSTable. */
export const SSTABLE_KIND = "LSST";
/** SSTable format version of a table without a prefix filter. */
export const SSTABLE_VERSION = 1;
/**
 * Format version of a table with a prefix Bloom filter: its footer
 * ({@link FOOTER_V2_BYTES}) also locates the prefix filter block. A table
 * built without a {@link PrefixExtractor} is still written as version 1,
 * byte for byte as before.
 */
export const SSTABLE_VERSION_PREFIX = 2;
/** Footer magic ("LSMF"). */
export const FOOTER_MAGIC = 0x464d534c;
/**
 * Footer, last bytes of the payload: magic u32, index offset f64, index
 * length u32, bloom offset f64, bloom length u32, entry count f64, CRC32C
 * u32 of the preceding 36 bytes. Offsets are from the start of the file.
 */
export const FOOTER_BYTES = 40;
/**
 * Version 2 footer: the version 1 fields from the magic to the entry
 * count (36 bytes), then the prefix filter's offset f64 and length u32,
 * then the CRC32C u32 of the preceding 48 bytes. The prefix filter block:
 * varint length and UTF-8 bytes of the extractor's name, the filter (as
 * the key filter's layout), a CRC32C trailer.
 */
export const FOOTER_V2_BYTES = 52;

/** Options of {@link SSTableBuilder}. */
export interface SSTableBuilderOptions {
  /** Target data block size before its trailer (default 4096). */
  blockBytes?: number;
  /** Bloom filter bits per key (default 10, about 1% false positives). */
  bloomBitsPerKey?: number;
  /**
   * With an extractor, the table also holds a Bloom filter of its keys'
   * prefixes (the same bits per prefix) and is written as version 2.
   */
  prefixExtractor?: PrefixExtractor;
}

/**
 * Builds one immutable SSTable in memory from entries added in strictly
 * increasing key order: data blocks (each with a CRC32C trailer), an index
 * block (last key, offset and length of every data block, plus the first
 * key), a Bloom filter block, a footer, all inside a codec file envelope
 * (`LSST`, whose CRC32C covers the whole file).
 */
export class SSTableBuilder {
  #blockBytes: number;
  #bitsPerKey: number;
  #chunks: Uint8Array[] = [];
  #offset = ENVELOPE_HEADER_BYTES;
  #pending: Entry[] = [];
  #pendingBytes = 0;
  #index: { last: Uint8Array; offset: number; length: number }[] = [];
  /** Each key's {@link hashKey}, for the key filter. */
  #hashes: number[] = [];
  #first: Uint8Array | undefined;
  #last: Uint8Array | undefined;
  #extractor: PrefixExtractor | undefined;
  /** Hash of each distinct prefix, in key order. */
  #prefixHashes: number[] = [];

  /** @param options block size, bloom density, prefix extractor. */
  constructor(options: SSTableBuilderOptions = {}) {
    this.#blockBytes = options.blockBytes ?? 4096;
    this.#bitsPerKey = options.bloomBitsPerKey ?? 10;
    this.#extractor = options.prefixExtractor;
  }

  /** Entries added. */
  get count(): number {
    return this.#hashes.length;
  }

  /** Approximate file size so far. */
  get estimatedBytes(): number {
    return this.#offset + this.#pendingBytes;
  }

  /** Adds an entry; keys must strictly increase. */
  add(key: Uint8Array, value: Value): void {
    if (this.#last !== undefined && compareBytes(this.#last, key) >= 0) {
      throw new RangeError("SSTable keys must be added in increasing order");
    }
    this.#first ??= key;
    this.#last = key;
    let h = HASH_START;
    const p = this.#extractor?.prefixOf(key);
    if (p !== undefined && p.length <= key.length) {
      // One pass hashes the prefix (a leading part of the key) and then
      // the whole key.
      h = hashRange(key, 0, p.length, h);
      const ph = finishHash(h);
      // Keys sharing a prefix are contiguous (the extractor's contract),
      // so each prefix is added once; two prefixes that merely share a
      // hash set the same bits anyway.
      const ps = this.#prefixHashes;
      if (ps.length === 0 || ps[ps.length - 1] !== ph) ps.push(ph);
      h = hashRange(key, p.length, key.length, h);
    } else {
      h = hashRange(key, 0, key.length, h);
    }
    this.#hashes.push(finishHash(h));
    this.#pending.push({ key, value });
    this.#pendingBytes += entryBytes(key, value);
    if (this.#pendingBytes >= this.#blockBytes) this.#cutBlock();
  }

  #cutBlock(): void {
    if (this.#pending.length === 0) return;
    const block = encodeBlock(this.#pending);
    this.#index.push({
      last: this.#pending[this.#pending.length - 1]!.key,
      offset: this.#offset,
      length: block.length,
    });
    this.#chunks.push(block);
    this.#offset += block.length;
    this.#pending = [];
    this.#pendingBytes = 0;
  }

  /** The complete file. */
  finish(): Uint8Array {
    this.#cutBlock();
    const first = this.#first ?? new Uint8Array(0);
    let n = varintLength(this.#index.length) + varintLength(first.length) +
      first.length;
    for (const b of this.#index) {
      n += varintLength(b.last.length) + b.last.length +
        varintLength(b.offset) + varintLength(b.length);
    }
    const index = new Uint8Array(n + BLOCK_TRAILER_BYTES);
    let o = writeVarint(index, 0, this.#index.length);
    o = writeVarint(index, o, first.length);
    index.set(first, o);
    o += first.length;
    for (const b of this.#index) {
      o = writeVarint(index, o, b.last.length);
      index.set(b.last, o);
      o += b.last.length;
      o = writeVarint(index, o, b.offset);
      o = writeVarint(index, o, b.length);
    }
    withTrailer(index);
    const indexOffset = this.#offset;
    this.#chunks.push(index);
    this.#offset += index.length;

    const bits = buildBloomFromHashes(this.#hashes, this.#bitsPerKey);
    const bloom = new Uint8Array(bits.length + BLOCK_TRAILER_BYTES);
    bloom.set(bits);
    withTrailer(bloom);
    const bloomOffset = this.#offset;
    this.#chunks.push(bloom);
    this.#offset += bloom.length;

    let prefixOffset = 0;
    let prefixLength = 0;
    if (this.#extractor !== undefined) {
      const name = new TextEncoder().encode(this.#extractor.name);
      const bits = buildBloomFromHashes(this.#prefixHashes, this.#bitsPerKey);
      const block = new Uint8Array(
        varintLength(name.length) + name.length + bits.length +
          BLOCK_TRAILER_BYTES,
      );
      const o = writeVarint(block, 0, name.length);
      block.set(name, o);
      block.set(bits, o + name.length);
      withTrailer(block);
      prefixOffset = this.#offset;
      prefixLength = block.length;
      this.#chunks.push(block);
      this.#offset += block.length;
    }

    const v2 = this.#extractor !== undefined;
    const footer = new Uint8Array(v2 ? FOOTER_V2_BYTES : FOOTER_BYTES);
    const fv = new DataView(footer.buffer);
    fv.setUint32(0, FOOTER_MAGIC, true);
    fv.setFloat64(4, indexOffset, true);
    fv.setUint32(12, index.length, true);
    fv.setFloat64(16, bloomOffset, true);
    fv.setUint32(24, bloom.length, true);
    fv.setFloat64(28, this.#hashes.length, true);
    let c = 36;
    if (v2) {
      fv.setFloat64(36, prefixOffset, true);
      fv.setUint32(44, prefixLength, true);
      c = 48;
    }
    fv.setUint32(c, crc32c(footer.subarray(0, c)), true);
    this.#chunks.push(footer);
    this.#offset += footer.length;

    // The codec envelope (as sealEnvelope makes it), with the chunks
    // copied once, straight into the file's bytes.
    const end = this.#offset;
    const out = new Uint8Array(end + ENVELOPE_TRAILER_BYTES);
    out.set(envelopeHeader(
      SSTABLE_KIND,
      v2 ? SSTABLE_VERSION_PREFIX : SSTABLE_VERSION,
      end - ENVELOPE_HEADER_BYTES,
    ));
    let at = ENVELOPE_HEADER_BYTES;
    for (const c of this.#chunks) {
      out.set(c, at);
      at += c.length;
    }
    this.#chunks = [];
    new DataView(out.buffer).setUint32(end, crc32c(out.subarray(0, end)), true);
    return out;
  }
}

/** Writes the CRC32C of all but the last 4 bytes into the last 4. */
function withTrailer(buf: Uint8Array): void {
  const n = buf.length - BLOCK_TRAILER_BYTES;
  new DataView(buf.buffer, buf.byteOffset, buf.length).setUint32(
    n,
    crc32c(buf.subarray(0, n)),
    true,
  );
}
