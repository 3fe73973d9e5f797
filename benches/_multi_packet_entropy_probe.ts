/**
 * Probe: could multi-packet compression decode its literals in JavaScript
 * (its own canonical Huffman stage, no native zstd call) fast enough for
 * `unpackOne` to beat zstd's whole-blob decompression on bench:transport's
 * 3-packet batch? Times, on that batch's 3,840 base64 characters (the
 * literals of pack's zstd frame, no LZ matches), a table-driven canonical
 * Huffman decoder (codes ≤ 11 bits) with one bit stream and with 4
 * interleaved streams (zstd's trick: independent decodes overlap), equal
 * 6-bit codes (no lookup decides where the next code starts) and the
 * decode table's build; on pack's reference (packet 0), a greedy LZ77
 * parse decoded with 4 literal streams (straight into place, or in a row
 * then copied); against node:zlib's zstd decompression of the whole
 * 3-packet concatenation (what the goal compares unpackOne with) and of a
 * 10-byte frame (a zstd call's fixed cost). On the sender's side, a JS
 * LZ77 + Huffman encode of the reference against zstd's compression of
 * the batch and of the reference as pack calls it. And what ships:
 * `pack`'s format-6 blob (the reference as an lz section with packed
 * literals, packed_lz.ts): `unpackOne` of the last packet and the
 * section's decode alone. Rounds alternate between the cases; prints
 * each case's fastest round and its ratio, the coded sizes, and the load
 * average. Writes no results file.
 *
 * `deno run -A benches/_multi_packet_entropy_probe.ts [rounds]`
 */
import {
  constants as zlib,
  zstdCompressSync,
  zstdDecompressSync,
} from "node:zlib";
import { appendBatchWithValues } from "./fanout_batches.ts";
import { pack, unpackOne } from "@strata/transport";
// Internal to the package (not exported): timed alone here.
import { decodeLz } from "../packages/transport/packed_lz.ts";
import { readVarint } from "@strata/codec";

const ROUNDS = Number(Deno.args[0] ?? 200);
const MAX_BITS = 11;

// ---- bench:transport's 3-packet batch (appendBatch(3), same seed) ----

const { packets, values } = appendBatchWithValues(3);
const plain = new Uint8Array(packets.reduce((n, p) => n + p.length, 0));
packets.reduce((at, p) => (plain.set(p, at), at + p.length), 0);
const whole = zstdCompressSync(plain);
const tiny = zstdCompressSync(new Uint8Array(10));
const literals = new TextEncoder().encode(values.join(""));
// What ships: pack's blob, and where its lz section starts (format 6:
// u8 6 · varint (count << 1 | editsCoded) · varint editsLength · edits).
const blob = pack(packets);
if (blob[0] !== 6) throw new Error(`pack wrote format ${blob[0]}, not 6`);
const blobHead = readVarint(blob, 1);
const blobEdits = readVarint(blob, blobHead.next);
const sectionAt = blobEdits.next + blobEdits.value;

// ---- canonical Huffman, codes ≤ MAX_BITS, most significant bit first ----

/** Code lengths ≤ MAX_BITS for symbol counts (typed arrays: timed below). */
function codeLengths(counts: Uint32Array): Uint8Array {
  const lengths = new Uint8Array(counts.length);
  const present: number[] = [];
  for (let s = 0; s < counts.length; s++) if (counts[s]! > 0) present.push(s);
  const m = present.length;
  if (m < 2) {
    if (m === 1) lengths[present[0]!] = 1;
    return lengths;
  }
  present.sort((a, b) => counts[a]! - counts[b]! || a - b);
  // Huffman's tree by two queues; the depth of each leaf.
  const weight = new Float64Array(2 * m);
  const parent = new Int32Array(2 * m);
  for (let i = 0; i < m; i++) weight[i] = counts[present[i]!]!;
  let leaf = 0;
  let inner = m;
  for (let next = m; next < 2 * m - 1; next++) {
    for (let k = 0; k < 2; k++) {
      const x = leaf < m && (inner >= next || weight[leaf]! <= weight[inner]!)
        ? leaf++
        : inner++;
      weight[next] = weight[next]! + weight[x]!;
      parent[x] = next;
    }
  }
  const depth = new Int32Array(2 * m - 1);
  for (let x = 2 * m - 3; x >= 0; x--) depth[x] = depth[parent[x]!]! + 1;
  // Too-long codes pulled up, the Kraft sum mended (zlib's way); the
  // shortest lengths to the most frequent symbols.
  const per = new Int32Array(MAX_BITS + 1);
  for (let i = 0; i < m; i++) per[Math.min(depth[i]!, MAX_BITS)]!++;
  let kraft = 0;
  for (let l = 1; l <= MAX_BITS; l++) kraft += per[l]! << (MAX_BITS - l);
  for (; kraft > 1 << MAX_BITS; kraft--) {
    per[MAX_BITS]!--;
    for (let l = MAX_BITS - 1; l > 0; l--) {
      if (per[l]! > 0) {
        per[l]!--;
        per[l + 1]! += 2;
        break;
      }
    }
  }
  let i = m - 1;
  for (let l = 1; l <= MAX_BITS; l++) {
    for (let c = per[l]!; c > 0; c--) lengths[present[i--]!] = l;
  }
  return lengths;
}

/** `streams` bit streams of consecutive parts, each padded by 4 bytes. */
function encode(src: Uint8Array, lengths: Uint8Array, streams: number) {
  const next: number[] = [];
  let code = 0;
  for (let l = 1; l <= MAX_BITS; l++) {
    code = (code + lengths.filter((x) => x === l - 1 && x > 0).length) << 1;
    next[l] = code;
  }
  const codes = [...lengths].map((l) => (l ? next[l]!++ : 0));
  const q = Math.ceil(src.length / streams);
  const out: number[] = [];
  const starts: number[] = [];
  for (let k = 0; k < streams; k++) {
    starts.push(out.length);
    let acc = 0;
    let bits = 0;
    for (let i = k * q; i < Math.min(src.length, (k + 1) * q); i++) {
      acc = (acc << lengths[src[i]!]!) | codes[src[i]!]!;
      bits += lengths[src[i]!]!;
      for (; bits >= 8; bits -= 8) out.push((acc >>> (bits - 8)) & 0xff);
    }
    if (bits > 0) out.push((acc << (8 - bits)) & 0xff);
    out.push(0, 0, 0, 0);
  }
  return { bytes: Uint8Array.from(out), starts, q };
}

const table = new Uint16Array(1 << MAX_BITS);
const perLength = new Int32Array(MAX_BITS + 1);
const startOf = new Int32Array(MAX_BITS + 2);

/** Entry i (the next 11 bits): symbol << 4 | length; canonical ranges. */
function buildTable(lengths: Uint8Array, t = table): Uint16Array {
  perLength.fill(0);
  for (let s = 0; s < lengths.length; s++) perLength[lengths[s]!]!++;
  let at = 0;
  for (let l = 1; l <= MAX_BITS; l++) {
    startOf[l] = at;
    at += perLength[l]! << (MAX_BITS - l);
  }
  for (let s = 0; s < lengths.length; s++) {
    const l = lengths[s]!;
    if (l === 0) continue;
    const from = startOf[l]!;
    const to = from + (1 << (MAX_BITS - l));
    for (let i = from; i < to; i++) t[i] = (s << 4) | l;
    startOf[l] = to;
  }
  return t;
}

/** One stream: each symbol's position waits for the previous length. */
function decode1(lengths: Uint8Array, src: Uint8Array, n: number) {
  const t = buildTable(lengths);
  const out = new Uint8Array(n);
  let buf = 0;
  let count = 0;
  let at = 0;
  for (let o = 0; o < n; o++) {
    if (count < MAX_BITS) {
      buf |= ((src[at]! << 8) | src[at + 1]!) << (16 - count);
      at += 2;
      count += 16;
    }
    const e = t[buf >>> (32 - MAX_BITS)]!;
    buf <<= e & 15;
    count -= e & 15;
    out[o] = e >> 4;
  }
  return out;
}

/** Four interleaved streams (the last one may be shorter). */
function decode4(
  lengths: Uint8Array,
  src: Uint8Array,
  starts: number[],
  q: number,
  n: number,
) {
  const t = buildTable(lengths);
  const out = new Uint8Array(n);
  const S = 32 - MAX_BITS;
  let [p0, p1, p2, p3] = starts as [number, number, number, number];
  let b0 = 0, b1 = 0, b2 = 0, b3 = 0, c0 = 0, c1 = 0, c2 = 0, c3 = 0;
  const full = n - 3 * q;
  for (let o = 0; o < q; o++) {
    if (c0 < MAX_BITS) {
      b0 |= ((src[p0]! << 8) | src[p0 + 1]!) << (16 - c0);
      p0 += 2;
      c0 += 16;
    }
    if (c1 < MAX_BITS) {
      b1 |= ((src[p1]! << 8) | src[p1 + 1]!) << (16 - c1);
      p1 += 2;
      c1 += 16;
    }
    if (c2 < MAX_BITS) {
      b2 |= ((src[p2]! << 8) | src[p2 + 1]!) << (16 - c2);
      p2 += 2;
      c2 += 16;
    }
    if (c3 < MAX_BITS) {
      b3 |= ((src[p3]! << 8) | src[p3 + 1]!) << (16 - c3);
      p3 += 2;
      c3 += 16;
    }
    const e0 = t[b0 >>> S]!, e1 = t[b1 >>> S]!;
    const e2 = t[b2 >>> S]!, e3 = t[b3 >>> S]!;
    b0 <<= e0 & 15;
    c0 -= e0 & 15;
    b1 <<= e1 & 15;
    c1 -= e1 & 15;
    b2 <<= e2 & 15;
    c2 -= e2 & 15;
    b3 <<= e3 & 15;
    c3 -= e3 & 15;
    out[o] = e0 >> 4;
    out[o + q] = e1 >> 4;
    out[o + 2 * q] = e2 >> 4;
    if (o < full) out[o + 3 * q] = e3 >> 4;
  }
  return out;
}

// ---- a whole decoder of that shape, on pack's reference (packet 0) ----
// LZ sequences (literal run, match length, offset; greedy parse, matches
// of 4+ bytes, the last offset preferred) as varints, the literals
// Huffman-coded in 4 streams into a row, then each sequence's literals
// and match copied in order: what an own codec replacing pack's zstd frame
// would do per unpackOne, less the blob's header, the code lengths'
// description and a coded sequence section. (Decoding the literals
// straight into their places in the output instead, each stream following
// its runs, measured 13.5–13.8 µs against 8.2: the per-symbol run checks.)

const ref = packets[0]!;
const seqLit: number[] = [];
const seqLen: number[] = [];
const seqOff: number[] = [];
const refLits: number[] = [];
{
  let i = 0;
  let litStart = 0;
  let last = 0;
  const matchAt = (j: number, i: number) => {
    let l = 0;
    while (i + l < ref.length && ref[j + l] === ref[i + l]) l++;
    return l;
  };
  while (i + 4 <= ref.length) {
    let len = 0;
    let off = 0;
    for (let j = 0; j < i; j++) {
      const l = matchAt(j, i);
      if (l > len) [len, off] = [l, i - j];
    }
    if (last > 0 && last <= i && matchAt(i - last, i) >= len - 1) {
      [len, off] = [matchAt(i - last, i), last];
    }
    if (len < 4) {
      i++;
      continue;
    }
    for (let k = litStart; k < i; k++) refLits.push(ref[k]!);
    seqLit.push(i - litStart);
    seqLen.push(len);
    seqOff.push(off);
    last = off;
    i += len;
    litStart = i;
  }
  for (let k = litStart; k < ref.length; k++) refLits.push(ref[k]!);
  seqLit.push(ref.length - litStart); // the last run, no match
  seqLen.push(0);
  seqOff.push(0);
}
const lits = Uint8Array.from(refLits);
const litCounts = new Uint32Array(256);
for (const c of lits) litCounts[c]!++;
const litLengths = codeLengths(litCounts);
const litCoded = encode(lits, litLengths, 4);
const seqBytes: number[] = [];
const pushVarint = (v: number) => {
  for (; v >= 0x80; v >>>= 7) seqBytes.push((v & 0x7f) | 0x80);
  seqBytes.push(v);
};
seqLit.forEach((
  l,
  s,
) => (pushVarint(l), pushVarint(seqLen[s]!), pushVarint(seqOff[s]!)));
const seqCoded = Uint8Array.from(seqBytes);

const litScratch = new Uint8Array(1 << 16);

/** The reference: literals decoded in a row, then copied run by run. */
function decodeReferenceInRow(): Uint8Array {
  const n = lits.length;
  const q = litCoded.q;
  const t = buildTable(litLengths);
  const S = 32 - MAX_BITS;
  const src = litCoded.bytes;
  const row = litScratch;
  let [p0, p1, p2, p3] = litCoded.starts as [number, number, number, number];
  let b0 = 0, b1 = 0, b2 = 0, b3 = 0, c0 = 0, c1 = 0, c2 = 0, c3 = 0;
  for (let o = 0; o < q; o++) {
    if (c0 < MAX_BITS) {
      b0 |= ((src[p0]! << 8) | src[p0 + 1]!) << (16 - c0);
      p0 += 2;
      c0 += 16;
    }
    if (c1 < MAX_BITS) {
      b1 |= ((src[p1]! << 8) | src[p1 + 1]!) << (16 - c1);
      p1 += 2;
      c1 += 16;
    }
    if (c2 < MAX_BITS) {
      b2 |= ((src[p2]! << 8) | src[p2 + 1]!) << (16 - c2);
      p2 += 2;
      c2 += 16;
    }
    if (c3 < MAX_BITS) {
      b3 |= ((src[p3]! << 8) | src[p3 + 1]!) << (16 - c3);
      p3 += 2;
      c3 += 16;
    }
    const e0 = t[b0 >>> S]!, e1 = t[b1 >>> S]!;
    const e2 = t[b2 >>> S]!, e3 = t[b3 >>> S]!;
    b0 <<= e0 & 15;
    c0 -= e0 & 15;
    b1 <<= e1 & 15;
    c1 -= e1 & 15;
    b2 <<= e2 & 15;
    c2 -= e2 & 15;
    b3 <<= e3 & 15;
    c3 -= e3 & 15;
    row[o] = e0 >> 4;
    row[o + q] = e1 >> 4;
    row[o + 2 * q] = e2 >> 4;
    row[o + 3 * q] = e3 >> 4; // the scratch row has room past n
  }
  const out = new Uint8Array(ref.length);
  let at = 0;
  let o = 0;
  let l = 0;
  while (at < seqCoded.length) {
    let lit = 0;
    let len = 0;
    let off = 0;
    for (let shift = 0;; shift += 7) {
      const b = seqCoded[at++]!;
      lit |= (b & 0x7f) << shift;
      if (b < 0x80) break;
    }
    for (let shift = 0;; shift += 7) {
      const b = seqCoded[at++]!;
      len |= (b & 0x7f) << shift;
      if (b < 0x80) break;
    }
    for (let shift = 0;; shift += 7) {
      const b = seqCoded[at++]!;
      off |= (b & 0x7f) << shift;
      if (b < 0x80) break;
    }
    if (lit >= 64) {
      out.set(row.subarray(l, l + lit), o);
      o += lit;
      l += lit;
    } else for (const end = o + lit; o < end;) out[o++] = row[l++]!;
    for (let from = o - off, end = o + len; o < end;) out[o++] = out[from++]!;
  }
  if (l !== n) throw new Error("literals left over");
  return out;
}
if (!decodeReferenceInRow().every((v, i) => v === ref[i])) {
  throw new Error("reference round trip failed (in a row)");
}
// ---- the sender's side: parse, count, code (what pack would spend) ----

const HASH_BITS = 12;
const head = new Int32Array(1 << HASH_BITS);
const litRow = new Uint8Array(1 << 16);
const seqs = new Int32Array(3 * 1024);
const bitsOut = new Uint8Array(1 << 16);

/**
 * Greedy LZ (4-byte hash, one candidate, the last offset tried first,
 * matches extended backwards, a growing step over stretches without
 * matches, as zstd's fast levels do), then the literals' counts, code
 * lengths, canonical codes and 4 bit streams. Returns the coded size:
 * literals, their code lengths' description (the 0 / 10·u4 / 11·u4 run
 * scheme) and the sequences as varints.
 */
function encodeReference(src: Uint8Array): number {
  const n = src.length;
  head.fill(-1);
  let lits = 0;
  let nseq = 0;
  let litStart = 0;
  let last = 0;
  let i = 0;
  let misses = 0;
  while (i + 4 <= n) {
    const word = src[i]! | (src[i + 1]! << 8) | (src[i + 2]! << 16) |
      (src[i + 3]! << 24);
    const h = Math.imul(word, 0x9e3779b1) >>> (32 - HASH_BITS);
    let j = -1;
    if (
      last > 0 && last <= i && src[i - last] === src[i] &&
      src[i - last + 1] === src[i + 1] && src[i - last + 2] === src[i + 2] &&
      src[i - last + 3] === src[i + 3]
    ) j = i - last;
    else {
      const c = head[h]!;
      if (
        c >= 0 && src[c] === src[i] && src[c + 1] === src[i + 1] &&
        src[c + 2] === src[i + 2] && src[c + 3] === src[i + 3]
      ) j = c;
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
    let end = i + 4;
    while (end < n && src[end] === src[j + end - start]) end++;
    for (let k = litStart; k < start; k++) litRow[lits++] = src[k]!;
    seqs[3 * nseq] = start - litStart;
    seqs[3 * nseq + 1] = end - start;
    seqs[3 * nseq + 2] = last = start - j;
    nseq++;
    i = litStart = end;
  }
  for (let k = litStart; k < n; k++) litRow[lits++] = src[k]!;
  const counts = new Uint32Array(256);
  for (let k = 0; k < lits; k++) counts[litRow[k]!]!++;
  const lengths = codeLengths(counts);
  const next = new Int32Array(MAX_BITS + 2);
  const per = new Int32Array(MAX_BITS + 1);
  for (let s = 0; s < 256; s++) per[lengths[s]!]!++;
  per[0] = 0;
  let code = 0;
  for (let l = 1; l <= MAX_BITS; l++) {
    next[l] = code = (code + per[l - 1]!) << 1;
  }
  const codes = new Int32Array(256);
  for (let s = 0; s < 256; s++) if (lengths[s]) codes[s] = next[lengths[s]!]!++;
  // Four streams of bits, each from its quarter of the literals.
  let out = 0;
  const q = Math.ceil(lits / 4);
  for (let k = 0; k < 4; k++) {
    let acc = 0;
    let bits = 0;
    for (let x = k * q, end = Math.min(lits, x + q); x < end; x++) {
      const c = litRow[x]!;
      acc = (acc << lengths[c]!) | codes[c]!;
      bits += lengths[c]!;
      if (bits >= 16) {
        bits -= 8;
        bitsOut[out++] = acc >>> bits;
        bits -= 8;
        bitsOut[out++] = acc >>> bits;
      }
    }
    for (; bits > 0; bits -= 8) bitsOut[out++] = acc << (8 - bits) >>> 8;
  }
  // The description's bits.
  let described = 0;
  for (let s = 0, prev = 0; s < 256;) {
    if (lengths[s] !== prev) {
      prev = lengths[s]!;
      described += 6;
      s++;
      continue;
    }
    let run = 1;
    while (run < 17 && s + run < 256 && lengths[s + run] === prev) run++;
    described += run >= 2 ? 6 : 1;
    s += run;
  }
  let seqBytes = 0;
  for (let k = 0; k < 3 * nseq; k++) {
    seqBytes += seqs[k]! < 0x80 ? 1 : seqs[k]! < 0x4000 ? 2 : 3;
  }
  parts = {
    lits,
    nseq,
    litBytes: out,
    described: Math.ceil(described / 8),
    seqBytes,
  };
  return out + Math.ceil(described / 8) + seqBytes;
}
let parts = {};
const packLike = (bytes: Uint8Array) =>
  zstdCompressSync(bytes, {
    pledgedSrcSize: bytes.length,
    params: {
      [zlib.ZSTD_c_compressionLevel]: 3,
      [zlib.ZSTD_c_minMatch]: 4,
      [zlib.ZSTD_c_windowLog]: 13,
      [zlib.ZSTD_c_hashLog]: 11,
      [zlib.ZSTD_c_chainLog]: 11,
      [zlib.ZSTD_c_contentSizeFlag]: 1,
    },
  });
const encodedSize = encodeReference(ref);
const senderCases: [string, () => unknown][] = [
  [
    "zstd compress (3-packet concatenation, default level)",
    () => zstdCompressSync(plain),
  ],
  [
    "zstd compress of the reference alone, pack's parameters",
    () => packLike(ref),
  ],
  ["JS LZ + Huffman encode of the reference", () => encodeReference(ref)],
];

// ---- run ----

const counts = new Uint32Array(256);
for (const c of literals) counts[c]!++;
const lengths = codeLengths(counts);
const one = encode(literals, lengths, 1);
const four = encode(literals, lengths, 4);
const same = (a: Uint8Array) => a.every((v, i) => v === literals[i]);
if (
  !same(decode1(lengths, one.bytes, literals.length)) ||
  !same(decode4(lengths, four.bytes, four.starts, four.q, literals.length))
) throw new Error("Huffman round trip failed");

// Equal code lengths (a uniform alphabet of 2^k symbols, as random base64
// is over its 64): no lookup decides where the next code starts, so the
// decodes do not wait on each other. 6 bits per symbol, 4 per 3 bytes.
const alphabet = [...new Set(literals)].sort((a, b) => a - b);
const indexOf = new Uint8Array(256);
alphabet.forEach((c, i) => (indexOf[c] = i));
const symbolOf = Uint8Array.from(alphabet);
const packed6 = new Uint8Array(Math.ceil(literals.length * 6 / 8) + 3);
for (let i = 0; i < literals.length; i++) {
  const bit = 6 * i;
  const v = indexOf[literals[i]!]! << 10 >>> (bit & 7);
  packed6[bit >> 3]! |= v >> 8;
  packed6[(bit >> 3) + 1]! |= v & 0xff;
}

function decodeFixed6(src: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array(n);
  const map = symbolOf;
  let at = 0;
  let o = 0;
  for (; o + 4 <= n; o += 4, at += 3) {
    const w = (src[at]! << 16) | (src[at + 1]! << 8) | src[at + 2]!;
    out[o] = map[w >>> 18]!;
    out[o + 1] = map[(w >>> 12) & 63]!;
    out[o + 2] = map[(w >>> 6) & 63]!;
    out[o + 3] = map[w & 63]!;
  }
  for (; o < n; o++) {
    const bit = 6 * o;
    const v = ((src[bit >> 3]! << 8) | src[(bit >> 3) + 1]!) << (bit & 7);
    out[o] = map[(v >> 10) & 63]!;
  }
  return out;
}
if (alphabet.length !== 64 || !same(decodeFixed6(packed6, literals.length))) {
  throw new Error("6-bit round trip failed");
}

const cases: [string, () => unknown][] = [
  [
    "zstd decompress whole (3 packets, size known)",
    () => zstdDecompressSync(whole, { chunkSize: plain.length + 1 }),
  ],
  ["zstd decompress of a 10-byte frame", () => zstdDecompressSync(tiny)],
  [
    "pack's blob (format 6): unpackOne of the last packet",
    () => unpackOne(blob, 2),
  ],
  [
    "pack's blob (format 6): its lz section decoded alone",
    () => decodeLz(blob, sectionAt, blob.length),
  ],
  [
    "JS decode table, 2^11 entries, fresh",
    () => buildTable(lengths, new Uint16Array(1 << MAX_BITS)),
  ],
  ["JS decode table, 2^11 entries, reused", () => buildTable(lengths)],
  [
    "JS Huffman 3,840 literals, 1 stream (with table)",
    () => decode1(lengths, one.bytes, literals.length),
  ],
  [
    "JS Huffman 3,840 literals, 4 streams (with table)",
    () => decode4(lengths, four.bytes, four.starts, four.q, literals.length),
  ],
  [
    "equal 6-bit codes, the 3,840 base64 characters (no table)",
    () => decodeFixed6(packed6, literals.length),
  ],
  [
    "JS decode of the reference: 4 literal streams in a row, then the sequences",
    decodeReferenceInRow,
  ],
];
/** Each case's fastest round (µs per call), the cases taking turns. */
function fastest(list: [string, () => unknown][]): number[] {
  const best = list.map(() => Infinity);
  for (const [, fn] of list) {
    const t = performance.now();
    while (performance.now() - t < 300) fn(); // past the JIT's tiers
  }
  for (let r = 0; r < ROUNDS; r++) {
    list.forEach(([, fn], c) => {
      const t = performance.now();
      for (let i = 0; i < 50; i++) fn();
      best[c] = Math.min(best[c]!, (performance.now() - t) * 1000 / 50);
    });
  }
  return best;
}

function print(list: [string, () => unknown][], best: number[], of: string) {
  list.forEach(([name], c) =>
    console.log(
      `${best[c]!.toFixed(2).padStart(7)}  ${
        (best[c]! / best[0]!).toFixed(3)
      } of ${of}  ${name}`,
    )
  );
}

const load = () => Deno.readTextFileSync("/proc/loadavg").trim();
console.log(
  `3-packet batch: plain ${plain.length} B, zstd ${whole.length} B; ` +
    `base64 literals ${literals.length} B → ${one.bytes.length - 4} B ` +
    `Huffman-coded; reference ${ref.length} B: zstd frame (pack's ` +
    `parameters) ${packLike(ref).length} B; greedy LZ: ${lits.length} ` +
    `literals (${litCoded.bytes.length - 16} B coded), ${seqLit.length} ` +
    `sequences; JS LZ + Huffman (fast parse) ${encodedSize} B with the ` +
    `code lengths' description and varint sequences: ${JSON.stringify(parts)}`,
);
console.log(
  `pack's blob: ${blob.length} B (format 6), its lz section ` +
    `${blob.length - sectionAt} B`,
);
console.log(
  `receiver, fastest of ${ROUNDS} rounds × 50 calls, µs; loadavg ${load()}`,
);
print(cases, fastest(cases), "whole");
console.log(`sender, µs; loadavg ${load()}`);
print(senderCases, fastest(senderCases), "zstd");
