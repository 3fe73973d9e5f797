/**
 * Compressed postings: for each term, the documents that contain it (local
 * doc numbers, ascending), the term frequency in each and the token
 * positions. Documents are grouped in blocks of {@link BLOCK_SIZE}; inside a
 * block doc numbers are delta-encoded and written as LEB128 varints with
 * their frequencies, followed by the block's position deltas. Each block has
 * a skip entry (last doc, byte offsets, max frequency, min field length) so
 * a cursor can jump over whole blocks without decoding them, and block-max
 * WAND can bound a block's best score without touching its bytes.
 */

/** Documents per postings block. */
export const BLOCK_SIZE = 128;
/** Doc number past every real one: a cursor at it is exhausted. */
export const NO_MORE_DOCS = 0x7fffffff;

/** Where a term's blocks live in a {@link PostingsData}. */
export interface TermPostings {
  /** Number of documents containing the term. */
  df: number;
  /** Index of the term's first skip entry. */
  blockStart: number;
  /** Number of blocks. */
  blockCount: number;
}

/** The postings bytes of a whole segment plus their skip data. */
export interface PostingsData {
  /** Doc/frequency and position bytes of every block of every term. */
  bytes: Uint8Array;
  /** Last doc number of each block. */
  lastDoc: Uint32Array;
  /** Byte offset of each block's doc/frequency section. */
  docOffset: Uint32Array;
  /** Byte offset of each block's position section. */
  posOffset: Uint32Array;
  /** Largest term frequency in each block. */
  maxTf: Uint32Array;
  /** Smallest field length (tokens) of a document in each block. */
  minLen: Uint32Array;
}

class GrowableBytes {
  buf = new Uint8Array(1 << 16);
  length = 0;
  varint(n: number): void {
    if (this.length + 5 > this.buf.length) {
      const next = new Uint8Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    while (n >= 0x80) {
      this.buf[this.length++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    this.buf[this.length++] = n;
  }
}

class GrowableU32 {
  buf = new Uint32Array(1024);
  length = 0;
  push(n: number): void {
    if (this.length === this.buf.length) {
      const next = new Uint32Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.length++] = n;
  }
  done(): Uint32Array {
    return this.buf.slice(0, this.length);
  }
}

/**
 * Builds a segment's {@link PostingsData}, one term at a time. Pure: bytes
 * in memory, no I/O.
 */
export class PostingsWriter {
  readonly #bytes = new GrowableBytes();
  readonly #lastDoc = new GrowableU32();
  readonly #docOffset = new GrowableU32();
  readonly #posOffset = new GrowableU32();
  readonly #maxTf = new GrowableU32();
  readonly #minLen = new GrowableU32();

  /**
   * Appends one term's postings.
   * @param docs ascending local doc numbers.
   * @param tfs frequency of the term in each doc (≥ 1).
   * @param positions all positions, doc after doc (tfs[i] of them for doc i), ascending within a doc.
   * @param lens field length (tokens) of every doc of the segment, indexed by doc number, for the block bounds.
   */
  add(
    docs: ArrayLike<number>,
    tfs: ArrayLike<number>,
    positions: ArrayLike<number>,
    lens: ArrayLike<number>,
  ): TermPostings {
    const blockStart = this.#lastDoc.length;
    const out = this.#bytes;
    let prevDoc = -1;
    let p = 0;
    for (let start = 0; start < docs.length; start += BLOCK_SIZE) {
      const end = Math.min(docs.length, start + BLOCK_SIZE);
      this.#docOffset.push(out.length);
      let maxTf = 0;
      let minLen = 0xffffffff;
      for (let i = start; i < end; i++) {
        const d = docs[i]!;
        const tf = tfs[i]!;
        out.varint(d - prevDoc - 1);
        out.varint(tf);
        prevDoc = d;
        if (tf > maxTf) maxTf = tf;
        const len = lens[d]!;
        if (len < minLen) minLen = len;
      }
      this.#posOffset.push(out.length);
      for (let i = start; i < end; i++) {
        let prev = 0;
        for (let k = 0, tf = tfs[i]!; k < tf; k++) {
          const pos = positions[p++]!;
          out.varint(pos - prev);
          prev = pos;
        }
      }
      this.#lastDoc.push(prevDoc);
      this.#maxTf.push(maxTf);
      this.#minLen.push(minLen);
    }
    return {
      df: docs.length,
      blockStart,
      blockCount: this.#lastDoc.length - blockStart,
    };
  }

  /** The finished postings (copies, sized exactly). */
  finish(): PostingsData {
    return {
      bytes: this.#bytes.buf.slice(0, this.#bytes.length),
      lastDoc: this.#lastDoc.done(),
      docOffset: this.#docOffset.done(),
      posOffset: this.#posOffset.done(),
      maxTf: this.#maxTf.done(),
      minLen: this.#minLen.done(),
    };
  }
}

const NO_BLOCK = new Int32Array(0);

/**
 * Iterates one term's postings in doc order. `advance` skips whole blocks
 * with the skip data; `shallowAdvance` only moves the skip pointer (for
 * block-max bounds) and decodes nothing.
 */
export class PostingCursor {
  /** Current doc number, or {@link NO_MORE_DOCS}. */
  doc = -1;
  /** Frequency of the term in the current doc. */
  tf = 0;
  readonly #data: PostingsData;
  readonly #first: number;
  readonly #end: number;
  /** Block currently decoded (-1 before the first). */
  #block = -1;
  /** Block the shallow pointer is on. */
  shallowBlock: number;
  // Allocated on the first decode: a prefix query makes cursors for up to
  // 64 terms per field, most of which WAND never decodes, and typed-array
  // allocation was the top self-time entry of a shard's query profile.
  #docs: Int32Array = NO_BLOCK;
  #tfs: Int32Array = NO_BLOCK;
  #n = 0;
  #i = 0;
  // Lazily decoded positions of the current block.
  #posDoc = 0;
  #posByte = 0;

  /** @param data the segment's postings; @param term the term's entry. */
  constructor(data: PostingsData, readonly term: TermPostings) {
    this.#data = data;
    this.#first = term.blockStart;
    this.#end = term.blockStart + term.blockCount;
    this.shallowBlock = this.#first;
  }

  #decode(block: number): void {
    if (this.#docs === NO_BLOCK) {
      this.#docs = new Int32Array(BLOCK_SIZE);
      this.#tfs = new Int32Array(BLOCK_SIZE);
    }
    const d = this.#data;
    const bytes = d.bytes;
    let off = d.docOffset[block]!;
    const end = d.posOffset[block]!;
    let doc = block === this.#first ? -1 : d.lastDoc[block - 1]!;
    let n = 0;
    while (off < end) {
      let b = bytes[off++]!;
      let v = b & 0x7f;
      for (let s = 7; b & 0x80; s += 7) {
        b = bytes[off++]!;
        v |= (b & 0x7f) << s;
      }
      doc += v + 1;
      b = bytes[off++]!;
      let tf = b & 0x7f;
      for (let s = 7; b & 0x80; s += 7) {
        b = bytes[off++]!;
        tf |= (b & 0x7f) << s;
      }
      this.#docs[n] = doc;
      this.#tfs[n++] = tf;
    }
    this.#block = block;
    this.#n = n;
    this.#i = 0;
    this.#posDoc = 0;
    this.#posByte = end;
    if (this.shallowBlock < block) this.shallowBlock = block;
  }

  /** Moves to the next doc; returns it (or {@link NO_MORE_DOCS}). */
  next(): number {
    if (this.#block >= 0 && this.#i + 1 < this.#n) {
      this.#i++;
    } else {
      const nb = this.#block < 0 ? this.#first : this.#block + 1;
      if (nb >= this.#end) return this.#exhaust();
      this.#decode(nb);
    }
    this.doc = this.#docs[this.#i]!;
    this.tf = this.#tfs[this.#i]!;
    return this.doc;
  }

  /** Moves to the first doc ≥ target; returns it (or {@link NO_MORE_DOCS}). */
  advance(target: number): number {
    if (this.doc >= target) return this.doc;
    const last = this.#data.lastDoc;
    let b = this.#block < 0 ? this.#first : this.#block;
    if (b >= this.#end) return this.#exhaust();
    if (last[b]! < target) {
      b++;
      while (b < this.#end && last[b]! < target) b++;
      if (b >= this.#end) return this.#exhaust();
    }
    if (b !== this.#block) this.#decode(b);
    let i = this.#i;
    const docs = this.#docs;
    while (docs[i]! < target) i++;
    this.#i = i;
    this.doc = docs[i]!;
    this.tf = this.#tfs[i]!;
    return this.doc;
  }

  /**
   * Moves the skip pointer to the block that may hold `target` without
   * decoding; returns false when no block does.
   */
  shallowAdvance(target: number): boolean {
    const last = this.#data.lastDoc;
    let b = this.shallowBlock;
    while (b < this.#end && last[b]! < target) b++;
    this.shallowBlock = b;
    return b < this.#end;
  }

  /** Last doc of the shallow pointer's block ({@link NO_MORE_DOCS} past the end). */
  shallowLastDoc(): number {
    return this.shallowBlock < this.#end
      ? this.#data.lastDoc[this.shallowBlock]!
      : NO_MORE_DOCS;
  }

  /** Max frequency and min length of the shallow pointer's block. */
  shallowBlockStats(): { maxTf: number; minLen: number } {
    return {
      maxTf: this.#data.maxTf[this.shallowBlock]!,
      minLen: this.#data.minLen[this.shallowBlock]!,
    };
  }

  /** Positions of the term in the current doc (decoded on demand). */
  positions(): number[] {
    const bytes = this.#data.bytes;
    let off = this.#posByte;
    // Skip positions of docs before the current one.
    while (this.#posDoc < this.#i) {
      for (let k = this.#tfs[this.#posDoc]!; k > 0; k--) {
        while (bytes[off++]! & 0x80);
      }
      this.#posDoc++;
    }
    this.#posByte = off;
    const out: number[] = [];
    let pos = 0;
    for (let k = this.#tfs[this.#i]!; k > 0; k--) {
      let b = bytes[off++]!;
      let v = b & 0x7f;
      for (let s = 7; b & 0x80; s += 7) {
        b = bytes[off++]!;
        v |= (b & 0x7f) << s;
      }
      pos += v;
      out.push(pos);
    }
    return out;
  }

  #exhaust(): number {
    this.#block = this.#end;
    this.shallowBlock = this.#end;
    this.doc = NO_MORE_DOCS;
    this.tf = 0;
    return NO_MORE_DOCS;
  }
}
