import { varintLength, writeVarint } from "@strata/codec";
import { blobVarint, malformed } from "./packed_plain.ts";

/**
 * A byte-aligned LZ coding whose literal runs may be **packed**: when a
 * run's bytes all come from a small alphabet (at most 2^k symbols, k ≤ 7:
 * base64, hex, digits, bits, a handful of flag values), each byte is
 * stored as its k-bit index in that alphabet. Multi-packet compression
 * codes a batch's reference with it instead of zstd when it is about as
 * small (format 6, see packed_edits.ts): a receiver then decodes with a
 * loop of JavaScript and no native call, whose fixed cost (≈ 6.4 µs per
 * `zstdDecompressSync`) is more than this decoder needs for a 5 KB
 * reference.
 *
 * ```
 * lz       = varint size · alphabet · sequence* (until `size` bytes are out)
 * alphabet = u8 k (0: no packed runs; 1 … 7) ·
 *            [k > 0: varint (count << 1 | bitmap) ·
 *               (bitmap: 32 bytes, bit s & 7 of byte s >> 3 set for symbol s |
 *                ranges: count × (u8 first · u8 (length − 1)))]
 *            (index i codes the alphabet's i-th symbol in increasing order;
 *             indexes past the alphabet decode as 0)
 * sequence = u8 token (lll r mmmm) ·
 *            [varint (literals << 1 | packed), when lll = 7] ·
 *            literals (packed: ⌈literals · k / 8⌉ bytes of k-bit indexes,
 *              most significant bit first; else the bytes) ·
 *            — the section ends here when `size` bytes are out — ·
 *            [varint offset, when mmmm > 0 and r = 0] ·
 *            [varint (length − 18), when mmmm = 15]
 *   lll  < 7: that many literal bytes, raw
 *   mmmm = 0: no match; 1 … 14: a match of mmmm + 3 bytes; 15: 18 or more
 *   r    = 1: the match is at the previous match's offset
 * ```
 *
 * The sender parses greedily (a 4-byte hash, the previous offset tried
 * first, matches extended backwards, a growing step over stretches with
 * no match, as zstd's fast levels do), then picks the alphabet: the 2^k
 * most frequent literal bytes for the k that would save most, refined by
 * a few swaps (a symbol the runs hardly use for one that keeps breaking
 * them). Matches that cost more than packing their bytes would become
 * literals (in data of a few symbols short repeats are everywhere); the
 * literal runs of alphabet bytes long enough to pay for a token of their
 * own are packed, the rest stays raw, and an alphabet that does not pay
 * for its description is dropped. Random base64 (64 symbols) packs to 6
 * bits a byte, what Huffman coding gets from it, without a table to send
 * or build.
 */

/** Largest size an lz section may state: bounds what decoding allocates. */
export const MAX_LZ_BYTES = 64 * 1024 * 1024;

const MIN_MATCH = 4;
const HASH_LOG = 13;
const MAX_K = 7;
/** Packed stretches that need a token of their own must save this much. */
const MIN_SPLIT_SAVING = 4;

const head = new Int32Array(1 << HASH_LOG);

/** An lz section and about what a zstd frame of the same input takes. */
export interface LzCoding {
  bytes: Uint8Array<ArrayBuffer>;
  /**
   * About the size of zstd's frame of the same input, in bytes (see
   * chooseAlphabet): the literals Huffman-coded with their table, ≈ 2
   * bytes a sequence and ≈ 20 of headers. Within 0.3% of the frame on
   * bench:transport's references.
   */
  zstdEstimate: number;
}

/** Codes `src` (any length up to {@link MAX_LZ_BYTES}) as an lz section. */
export function encodeLz(src: Uint8Array): LzCoding {
  const n = src.length;
  // Sequences as (literal start, literal length, match length, offset).
  let seqs: number[] = [];
  head.fill(-1);
  let litStart = 0;
  let last = 0;
  let i = 0;
  let misses = 0;
  // 4-byte words read in one load each.
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  while (i + MIN_MATCH <= n) {
    const word = view.getInt32(i, true);
    const h = Math.imul(word, 0x9e3779b1) >>> (32 - HASH_LOG);
    let j = -1;
    if (last > 0 && last <= i && view.getInt32(i - last, true) === word) {
      j = i - last;
    } else {
      const c = head[h]!;
      if (c >= 0 && view.getInt32(c, true) === word) j = c;
    }
    head[h] = i;
    if (j < 0) {
      i += 1 + (++misses >> 6);
      continue;
    }
    misses = 0;
    let start = i;
    while (start > litStart && j > 0 && src[start - 1] === src[j - 1]) {
      start--;
      j--;
    }
    let end = i + MIN_MATCH;
    while (end < n && src[end] === src[j + end - start]) end++;
    seqs.push(litStart, start - litStart, end - start, last = start - j);
    // A few positions inside the match, so later repeats find it.
    for (let p = end - 2; p > start && p > end - 8; p -= 3) {
      if (p + MIN_MATCH <= n) {
        const w = view.getInt32(p, true);
        head[Math.imul(w, 0x9e3779b1) >>> (32 - HASH_LOG)] = p;
      }
    }
    i = litStart = end;
  }
  seqs.push(litStart, n - litStart, 0, 0);
  let alphabet = chooseAlphabet(src, seqs);
  if (alphabet.k > 0) seqs = demoteMatches(src, seqs, alphabet);
  let pieces = planPieces(src, seqs, alphabet);
  // The alphabet was chosen on counts; when its bytes are too scattered
  // to form runs worth packing, it costs more than it saves; when it
  // pays, a swap or two may make it pay more.
  const pays = (a: Alphabet, p: Pieces) =>
    p.saving >= a.description.length + 2 * p.packedRuns;
  if (alphabet.k > 0 && pays(alphabet, pieces)) {
    [alphabet, pieces] = refineAlphabet(src, seqs, alphabet, pieces);
  }
  if (alphabet.k > 0 && !pays(alphabet, pieces)) {
    alphabet = { ...alphabet, k: 0, description: [] };
    pieces = planPieces(src, seqs, alphabet);
  }
  return {
    bytes: writeSequences(src, seqs, alphabet, pieces.list),
    zstdEstimate: alphabet.zstdEstimate,
  };
}

interface Alphabet {
  k: number;
  /** Index + 1 of each symbol in the alphabet, 0 when outside. */
  index: Uint8Array;
  /** The description's bytes (after u8 k). */
  description: number[];
  zstdEstimate: number;
}

// Scratch for chooseAlphabet (encodeLz runs to completion, never nested).
const counts = new Int32Array(256);
const keys = new Int32Array(256);
const member = new Uint8Array(258);
const merged = new Float64Array(256);

/** The 2^k most frequent literal bytes, for the k that saves most. */
function chooseAlphabet(src: Uint8Array, seqs: number[]): Alphabet {
  counts.fill(0);
  let lits = 0;
  for (let s = 0; s < seqs.length; s += 4) {
    const from = seqs[s]!;
    const to = from + seqs[s + 1]!;
    for (let x = from; x < to; x++) counts[src[x]!]!++;
    lits += to - from;
  }
  // Present symbols by count: count · 256 + symbol (the count capped to
  // fit), sorted natively; the most frequent last.
  let m = 0;
  for (let c = 0; c < 256; c++) {
    const count = counts[c]!;
    if (count > 0) keys[m++] = Math.min(count, 0x7fffff) * 256 + c;
  }
  const sorted = keys.subarray(0, m).sort();
  // What zstd's frame of the same input would about take: its literals
  // Huffman-coded with a table of ≈ half a byte a symbol (or raw, when
  // that is smaller), ≈ 2 bytes a sequence, ≈ 20 bytes of frame and
  // section headers. Fitted on the bench's reference (3,204 bytes,
  // estimated 3,205) and its binary variant (4,245, estimated 4,255).
  const zstdEstimate =
    Math.min(lits, Math.ceil(huffmanBits(sorted) / 8) + m / 2) +
    2 * (seqs.length / 4) + 20;
  // The description's length for each k from the alphabet's ranges,
  // counted as symbols join it (a symbol joins, merges or extends ranges).
  member.fill(0);
  let ranges = 0;
  let best = 0;
  let bestSaving = 0;
  let covered = 0;
  for (let k = 1, x = 0; k <= MAX_K && x < m; k++) {
    for (; x < (1 << k) && x < m; x++) {
      const c = sorted[m - 1 - x]! & 255;
      covered += counts[c]!;
      ranges += 1 - member[c]! - member[c + 2]!;
      member[c + 1] = 1;
    }
    const saving = (covered * (8 - k)) / 8 - 1 - Math.min(2 * ranges, 32);
    // An alphabet of less than three quarters of the literals is not
    // tried: its bytes would seldom come in runs (of random bytes, 64
    // symbols cover a quarter, 128 half), and looking for them costs a
    // pass over every literal.
    if (saving > bestSaving && 4 * covered >= 3 * lits) {
      best = k;
      bestSaving = saving;
    }
  }
  const index = new Uint8Array(256);
  if (best === 0) return { k: 0, index, description: [], zstdEstimate };
  member.fill(0);
  for (let x = 0; x < (1 << best) && x < m; x++) {
    member[(sorted[m - 1 - x]! & 255) + 1] = 1;
  }
  return { k: best, index, description: describe(member, index), zstdEstimate };
}

/** Bits of a Huffman code for `counts` (its symbols in `sorted`, by count). */
function huffmanBits(sorted: Int32Array): number {
  const m = sorted.length;
  if (m < 2) return m === 1 ? counts[sorted[0]! & 255]! : 0;
  // Two queues: the leaves in order, the merged nodes as they come.
  let leaf = 0;
  let head = 0;
  let tail = 0;
  let total = 0;
  for (let step = 1; step < m; step++) {
    let w = 0;
    for (let two = 0; two < 2; two++) {
      const l = leaf < m ? counts[sorted[leaf]! & 255]! : Infinity;
      if (head === tail || l <= merged[head]!) {
        w += l;
        leaf++;
      } else w += merged[head++]!;
    }
    total += w;
    merged[tail++] = w;
  }
  return total;
}

const inRuns = new Int32Array(256);
const breaks = new Int32Array(256);
/** Swaps tried by {@link refineAlphabet}. */
const MAX_SWAPS = 4;

/**
 * Swaps a symbol the packed runs hardly use for one that keeps breaking
 * them, while that packs more: the most frequent literals are not always
 * the runs' (a header's quotes and colons, ahead of a base64 character
 * that turns up a little less often, would cut every base64 run where
 * that character is).
 */
function refineAlphabet(
  src: Uint8Array,
  seqs: number[],
  alphabet: Alphabet,
  pieces: Pieces,
): [Alphabet, Pieces] {
  for (let swap = 0; swap < MAX_SWAPS; swap++) {
    const { index } = alphabet;
    breaks.fill(0);
    // Raw pieces only (the few bytes left unpacked): a member's uses in
    // runs are its literal count less its raw ones.
    inRuns.set(counts);
    const list = pieces.list;
    for (let q = 0; q < list.length; q += 4) {
      if (list[q + 2] === 1) continue;
      const y = list[q + 1]!;
      for (let z = list[q]!; z < y; z++) {
        const c = src[z]!;
        inRuns[c]!--;
        // A byte outside the alphabet between two inside it.
        if (
          index[c] === 0 && z > 0 && z + 1 < src.length &&
          index[src[z - 1]!] !== 0 && index[src[z + 1]!] !== 0
        ) breaks[c]!++;
      }
    }
    let out = -1;
    let into = -1;
    for (let c = 0; c < 256; c++) {
      if (index[c] !== 0) {
        if (out < 0 || inRuns[c]! < inRuns[out]!) out = c;
      } else if (breaks[c]! > 0 && (into < 0 || breaks[c]! > breaks[into]!)) {
        into = c;
      }
    }
    if (into < 0 || breaks[into]! <= inRuns[out]!) break;
    member.fill(0);
    for (let c = 0; c < 256; c++) member[c + 1] = index[c] !== 0 ? 1 : 0;
    member[out + 1] = 0;
    member[into + 1] = 1;
    const next: Alphabet = {
      ...alphabet,
      index: new Uint8Array(256),
      description: [],
    };
    next.description = describe(member, next.index);
    const planned = planPieces(src, seqs, next);
    if (
      planned.saving - next.description.length <=
        pieces.saving - alphabet.description.length
    ) break;
    [alphabet, pieces] = [next, planned];
  }
  return [alphabet, pieces];
}

/**
 * The description of the alphabet flagged in `member` (symbol c at c + 1):
 * ranges, or a bitmap when shorter; fills `index` (index + 1 of each
 * symbol in it).
 */
function describe(member: Uint8Array, index: Uint8Array): number[] {
  const ranges: number[] = [];
  for (let c = 0, x = 0; c < 256; c++) {
    if (member[c + 1] === 0) continue;
    index[c] = ++x;
    if (member[c] === 1) ranges[ranges.length - 1]!++;
    else ranges.push(c, 0);
  }
  const count = ranges.length / 2;
  if (2 * count < 32) return [...varintBytes(count << 1), ...ranges];
  const bitmap = new Array<number>(32).fill(0);
  for (let c = 0; c < 256; c++) bitmap[c >> 3]! |= member[c + 1]! << (c & 7);
  return [...varintBytes(count << 1 | 1), ...bitmap];
}

function varintBytes(v: number): number[] {
  const out: number[] = [];
  for (; v >= 0x80; v = Math.floor(v / 0x80)) out.push((v & 0x7f) | 0x80);
  out.push(v);
  return out;
}

/**
 * The sequences with the matches that cost more than packing their bytes
 * made literals (joined to the stretches around them): in data of a few
 * symbols (bits, digits) short repeats are everywhere, and a 4-byte match
 * takes 2 or 3 bytes where 4 binary digits packed take half a byte.
 */
function demoteMatches(
  src: Uint8Array,
  seqs: number[],
  a: Alphabet,
): number[] {
  const { k, index } = a;
  const out: number[] = [];
  let litStart = seqs[0]!;
  let last = 0;
  for (let s = 0; s < seqs.length; s += 4) {
    const matchAt = seqs[s]! + seqs[s + 1]!;
    const len = seqs[s + 2]!;
    const offset = seqs[s + 3]!;
    const cost = 1 + (offset === last ? 0 : varintLength(offset)) +
      (len >= 18 ? varintLength(len - 18) : 0);
    let demote = len > 0 && len * k < 8 * cost &&
      s + 4 < seqs.length &&
      // Joined to packable neighbours (or none), so it is packed too.
      (matchAt === litStart || index[src[matchAt - 1]!] !== 0) &&
      (seqs[s + 5] === 0 || index[src[matchAt + len]!] !== 0);
    for (let x = matchAt; demote && x < matchAt + len; x++) {
      if (index[src[x]!] === 0) demote = false;
    }
    if (demote) continue;
    out.push(litStart, matchAt - litStart, len, offset);
    if (len > 0) last = offset;
    litStart = matchAt + len;
  }
  return out;
}

/** Every sequence's literal pieces, and what packing them saves. */
interface Pieces {
  /**
   * (start, end, packed, sequence) quadruples in order; `sequence` is the
   * index in `seqs` of the sequence whose match follows the piece (its
   * stretch's last piece), −1 for the others.
   */
  list: number[];
  saving: number;
  packedRuns: number;
}

/**
 * Splits each literal stretch into pieces: runs of alphabet bytes packed
 * where packing saves more than a token of their own costs (a whole
 * stretch: more than its length's varint), raw bytes between.
 */
function planPieces(src: Uint8Array, seqs: number[], a: Alphabet): Pieces {
  const { k, index } = a;
  const list: number[] = [];
  let saving = 0;
  let packedRuns = 0;
  // The shortest run that gains 2 bytes (what its length's varint costs).
  let minRun = 1;
  while (minRun - Math.ceil(minRun * k / 8) < 2 && k > 0) minRun++;
  for (let s = 0; s < seqs.length; s += 4) {
    const from = seqs[s]!;
    const to = from + seqs[s + 1]!;
    // The last sequence, when the input ends with a match, is empty.
    if (from === to && seqs[s + 2] === 0) continue;
    let raw = from;
    // The length of the run of alphabet bytes before y, counted without
    // a branch (random data would mispredict one at every byte); a run is
    // looked at where it ends, if it is long enough to gain.
    // (The run's length is a parameter: a closure capturing it would keep
    // it in memory, not in a register, through the scan.)
    const take = (y: number, run: number) => {
      const start = y - run;
      const gain = run - Math.ceil(run * k / 8);
      if (gain >= (start === from && y === to ? 2 : MIN_SPLIT_SAVING)) {
        if (start > raw) list.push(raw, start, 0, -1);
        list.push(start, y, 1, -1);
        raw = y;
        saving += gain;
        packedRuns++;
      }
    };
    let run = 0;
    for (let y = from; k > 0 && y < to; y++) {
      const inside = (index[src[y]!]! + 255) >> 8;
      // Branch-free test of "a run of minRun or more ends here".
      if ((((minRun - 1 - run) >> 31) & (inside ^ 1)) !== 0) take(y, run);
      run = (run + 1) & -inside;
    }
    if (run >= minRun) take(to, run);
    // The stretch's last piece carries its match.
    if (raw === to && raw > from) list[list.length - 1] = s;
    else list.push(raw, to, 0, s);
  }
  return { list, saving, packedRuns };
}

/** Writes the section: size, alphabet, then every piece and match. */
function writeSequences(
  src: Uint8Array,
  seqs: number[],
  a: Alphabet,
  pieces: number[],
): Uint8Array<ArrayBuffer> {
  const { k, index } = a;
  // The exact size first: the section is written in place.
  let size = varintLength(src.length) + 1 + (k > 0 ? a.description.length : 0);
  for (let p = 0, last = 0; p < pieces.length; p += 4) {
    const lits = pieces[p + 1]! - pieces[p]!;
    const packed = pieces[p + 2] === 1;
    size += 1 + (packed ? Math.ceil(lits * k / 8) : lits);
    if (packed || lits >= 7) size += varintLength(lits * 2);
    const s = pieces[p + 3]!;
    const len = s < 0 ? 0 : seqs[s + 2]!;
    if (len === 0) continue;
    if (seqs[s + 3] !== last) size += varintLength(last = seqs[s + 3]!);
    if (len >= 18) size += varintLength(len - 18);
  }
  const out = new Uint8Array(size);
  let at = writeVarint(out, 0, src.length);
  out[at++] = k;
  if (k > 0) { for (const b of a.description) out[at++] = b; }
  let last = 0;
  for (let p = 0; p < pieces.length; p += 4) {
    const x = pieces[p]!;
    const y = pieces[p + 1]!;
    const packed = pieces[p + 2] === 1;
    const s = pieces[p + 3]!;
    const len = s < 0 ? 0 : seqs[s + 2]!;
    const offset = s < 0 ? 0 : seqs[s + 3]!;
    let t = 0;
    if (len > 0) {
      t = len >= 18 ? 15 : len - 3;
      if (offset === last) t |= 16;
    }
    if (!packed && y - x < 7) out[at++] = t | ((y - x) << 5);
    else {
      out[at++] = t | (7 << 5);
      at = writeVarint(out, at, (y - x) * 2 + (packed ? 1 : 0));
    }
    if (packed) at = packRun(src, x, y, k, index, out, at);
    else {
      out.set(src.subarray(x, y), at);
      at += y - x;
    }
    if (len > 0) {
      if ((t & 16) === 0) at = writeVarint(out, at, offset);
      if (len >= 18) at = writeVarint(out, at, len - 18);
      last = offset;
    }
  }
  if (at !== size) throw new Error(`lz section: ${at} bytes, ${size} planned`);
  return out;
}

/** Writes src[x, y) as k-bit indexes, most significant bit first. */
function packRun(
  src: Uint8Array,
  x: number,
  y: number,
  k: number,
  index: Uint8Array,
  out: Uint8Array,
  at: number,
): number {
  let z = x;
  if (k === 6) {
    // Four codes in three bytes.
    for (; z + 4 <= y; z += 4, at += 3) {
      const w = ((index[src[z]!]! - 1) << 18) |
        ((index[src[z + 1]!]! - 1) << 12) |
        ((index[src[z + 2]!]! - 1) << 6) | (index[src[z + 3]!]! - 1);
      out[at] = w >>> 16;
      out[at + 1] = w >>> 8;
      out[at + 2] = w;
    }
  }
  let acc = 0;
  let bits = 0;
  for (; z < y; z++) {
    acc = ((acc << k) | (index[src[z]!]! - 1)) & 0xffff;
    bits += k;
    if (bits >= 8) {
      bits -= 8;
      out[at++] = acc >>> bits;
    }
  }
  if (bits > 0) out[at++] = acc << (8 - bits);
  return at;
}

/**
 * Decodes the lz section `src[from, to)` into a new array of the size it
 * states.
 * @throws TransportError `protocol_error` when it is malformed.
 */
export function decodeLz(
  src: Uint8Array,
  from: number,
  to: number,
): Uint8Array<ArrayBuffer> {
  const sz = blobVarint(src, from);
  const size = sz.value;
  if (size > MAX_LZ_BYTES) {
    throw malformed(`lz section of ${size} bytes announced`);
  }
  let at = sz.next;
  if (at >= to) throw malformed("lz section cut short");
  const k = src[at++]!;
  if (k > MAX_K) throw malformed(`alphabet of ${k}-bit codes`);
  const map = new Uint8Array(1 << MAX_K);
  if (k > 0) at = readAlphabet(src, at, to, map, k);
  const out = new Uint8Array(size);
  let o = 0;
  let last = 0;
  while (o < size) {
    if (at >= to) throw malformed("lz section cut short");
    const t = src[at++]!;
    let lits = t >> 5;
    let packed = false;
    if (lits === 7) {
      const v = blobVarint(src, at);
      at = v.next;
      lits = Math.floor(v.value / 2);
      packed = v.value % 2 === 1;
    }
    if (lits > size - o) throw malformed("literals past the section");
    if (packed) {
      if (k === 0) throw malformed("packed literals without an alphabet");
      const bytes = Math.ceil(lits * k / 8);
      if (at + bytes > to) throw malformed("lz section cut short");
      unpackRun(src, at, at + bytes, out, o, lits, k, map);
      at += bytes;
    } else {
      if (at + lits > to) throw malformed("lz section cut short");
      if (lits > 16) out.set(src.subarray(at, at + lits), o);
      else for (let x = 0; x < lits; x++) out[o + x] = src[at + x]!;
      at += lits;
    }
    o += lits;
    if (o === size) break;
    const m = t & 15;
    if (m === 0) continue;
    if ((t & 16) === 0) {
      const v = blobVarint(src, at);
      at = v.next;
      last = v.value;
    }
    let len = m + 3;
    if (m === 15) {
      const v = blobVarint(src, at);
      at = v.next;
      len = 18 + v.value;
    }
    if (last < 1 || last > o) throw malformed("match before the section");
    if (len > size - o) throw malformed("match past the section");
    for (let x = o - last, end = o + len; o < end;) out[o++] = out[x++]!;
  }
  if (at !== to) throw malformed("bytes after the lz section");
  return out;
}

function readAlphabet(
  src: Uint8Array,
  at: number,
  to: number,
  map: Uint8Array,
  k: number,
): number {
  const d = blobVarint(src, at);
  at = d.next;
  const count = Math.floor(d.value / 2);
  let m = 0;
  if (d.value % 2 === 1) {
    if (at + 32 > to) throw malformed("lz section cut short");
    for (let c = 0; c < 256; c++) {
      if ((src[at + (c >> 3)]! >> (c & 7)) & 1) {
        if (m === 1 << k) throw malformed("alphabet larger than its codes");
        map[m++] = c;
      }
    }
    return at + 32;
  }
  if (at + 2 * count > to) throw malformed("lz section cut short");
  for (let r = 0; r < count; r++, at += 2) {
    const first = src[at]!;
    const length = src[at + 1]! + 1;
    if (first + length > 256 || m + length > 1 << k) {
      throw malformed("alphabet larger than its codes");
    }
    for (let c = first; c < first + length; c++) map[m++] = c;
  }
  return at;
}

/** Writes `n` symbols of k-bit indexes from `src[at, end)` into `out`. */
function unpackRun(
  src: Uint8Array,
  at: number,
  end: number,
  out: Uint8Array,
  o: number,
  n: number,
  k: number,
  map: Uint8Array,
): void {
  const mask = (1 << k) - 1;
  let x = 0;
  if (k === 6) {
    // Four codes in three bytes.
    for (; x + 4 <= n; x += 4, at += 3) {
      const w = (src[at]! << 16) | (src[at + 1]! << 8) | src[at + 2]!;
      out[o + x] = map[w >>> 18]!;
      out[o + x + 1] = map[(w >>> 12) & 63]!;
      out[o + x + 2] = map[(w >>> 6) & 63]!;
      out[o + x + 3] = map[w & 63]!;
    }
  }
  // Any k: each code lies within two bytes (k + 7 ≤ 16 bits).
  let bit = 0;
  for (; x < n; x++, bit += k) {
    const b = at + (bit >> 3);
    const w = (src[b]! << 8) | (b + 1 < end ? src[b + 1]! : 0);
    out[o + x] = map[(w >>> (16 - k - (bit & 7))) & mask]!;
  }
}
