import { Buffer } from "node:buffer";
import {
  constants as zlib,
  zstdCompressSync,
  zstdDecompressSync,
} from "node:zlib";
import { varintLength, writeVarint } from "@strata/codec";
import { blobVarint, malformed } from "./packed_plain.ts";
import { decodeLz, encodeLz } from "./packed_lz.ts";

/**
 * The edits formats of multi-packet compression: the first packet is the
 * reference, every other packet is either an edit of it or stored whole;
 * the reference and the packets stored whole are coded as an lz section
 * (format 6, packed_lz.ts) or with zstd (formats 5 and 4), the edits are
 * sparse column differences.
 *
 * ```
 * format 6:
 * u8 6 · varint (packetCount (≥ 1) << 1 | editsCoded) · varint editsLength ·
 *   edits (coded: an lz section of them) · lz section (rest of the blob) of:
 *   reference · the packets stored whole
 *
 * formats 5 and 4:
 * u8 format · varint (packetCount (≥ 1) << 1 | editsFramed) ·
 *   varint editsLength · [edits, when not framed] · frame (rest of the blob)
 * frame  = a zstd frame (format 4: less its 4-byte magic number) of:
 *          [edits, when framed] · reference · the packets stored whole
 * edits  = record*, covering packets 1 … count-1 in order
 * record = varint (k << 3 | shifted << 2 | kind), k ≥ 1 packets:
 *   kind 0, whole: k × varint length (the next k packets of the frame)
 *   kind 1 … 3, edits: varint middle ·
 *                  [varint prefix, unless middle is 0 and not shifted] ·
 *                  [varint split · varint zigzag(length − refLength), if shifted] ·
 *                  [varint period, kind 3] ·
 *                  [varint dataLength, unless the last record] · data
 * data   = value*, each after the zeros it skips, trailing zeros implied:
 *   1zzvvvvv: z < 4 zeros, then zigzag(v) < 32 as a signed byte;
 *   0rrrrrrr · u8 value: r < 127 zeros, then the value;
 *   0x7f · varint (zeros − 127) · u8 value
 * ```
 *
 * The reference is what the frame (or section) holds before the packets
 * stored whole.
 * An edit group's k packets all have the same length and equal the
 * reference in their first `prefix` and last `length − prefix − middle`
 * bytes (the fan-out case: one message, a different header per receiver).
 * Their middles form a k × middle matrix that `data` lists column by
 * column, as second differences down each column. With `b` the
 * reference's byte at the same place counted from the middle's start (for
 * the first `split` bytes) or from its end (after them: a field that grew
 * or shrank shifts what follows it; 0 outside the reference) and `vⱼ`
 * packet j's byte, the values stored are `v₀ − b`, then `v₁ − v₀` (kind 1)
 * or `(v₁ − v₀) − (v₀ − b)` (kind 2), then `(vⱼ − vⱼ₋₁) − (vⱼ₋₁ − vⱼ₋₂)`,
 * all mod 256; or (kind 3) `vⱼ` minus packet `j − period`'s byte (minus `b`
 * for the first `period` packets), for fields that cycle among a few
 * values. The encoder keeps the sparsest. A byte equal in all is a column
 * of zeros, a field equal in all but not to the reference costs one or two
 * values, and a field that counts up across receivers (a follower id, a
 * commit index) costs one or two, however many packets there are.
 *
 * Why edits may go raw: a few bytes of edits, mostly outside the alphabet
 * of the reference's literals, would grow the zstd block's Huffman table
 * by more than they weigh; more edits go inside the frame (one zstd call,
 * whose fixed setup dominates a small batch's time). The packets stored
 * whole share the reference's zstd window, so what later packets share
 * with it (or with each other) is still stored once. zstd's window and
 * tables are sized to the input rather than to its defaults for unknown
 * inputs, which keeps a small batch cheap to pack.
 *
 * Format 6 is written when its lz section is at most {@link LZ_SLACK}
 * above what zstd's frame would about take (its literals' Huffman cost
 * and table, its sequences, its headers): a receiver then decodes in
 * JavaScript, with no zstd call and its fixed ≈ 6.4 µs. Otherwise zstd
 * codes the batch too and the smaller blob goes (so a batch whose
 * literals are text, ≈ 4–5 bits each to Huffman, keeps zstd). The lz
 * section is tried for references plus packets stored whole up to
 * {@link MAX_LZ_BODY}. Edits of {@link MIN_FRAMED_EDITS} bytes or more
 * are coded as an lz section of their own when that is smaller (their
 * few distinct values pack).
 *
 * Format 4 is the same as 5 with the frame's 4-byte magic number left out
 * (the format byte stands for it). A frame of 1 KiB or more keeps it
 * (format 5): zstd is then handed a view of the blob instead of a copy
 * with the magic put back, and unpacking one packet costs little more
 * than that one zstd call; a smaller frame leaves it out, where 4 bytes
 * matter more than copying the frame.
 */
export const EDITS_FORMAT = 5;

/**
 * The reference and the packets stored whole as an lz section
 * (packed_lz.ts) instead of a zstd frame: decoded without a native call.
 */
export const LZ_FORMAT = 6;

/**
 * The lz section is sent without trying zstd when it is at most this
 * much above what zstd's frame would about take (packed_lz.ts's
 * estimate: 3,200 for the bench's reference, whose frame is 3,204;
 * 4,255 for its binary variant, 4,245), else zstd codes the batch too and
 * the smaller blob goes: trying both costs about twice the time.
 */
const LZ_SLACK = 1.01;

/**
 * Largest reference plus packets stored whole coded as an lz section:
 * beyond it a zstd call's fixed cost (≈ 6.4 µs) is small next to decoding
 * the bytes, and JavaScript codes them more slowly than zstd (measured:
 * 10 unrelated random 4 KiB packets, 40 KiB, pack 3.4× zstd's time with
 * the lz section tried, 1.3× without).
 */
const MAX_LZ_BODY = 16 * 1024;

/** Format 5 with the frame's magic number left out: small frames. */
export const MAGICLESS_EDITS_FORMAT = 4;

/** Largest zstd section a blob may decode to: bounds what unpacking allocates. */
export const MAX_PLAN_BYTES = 64 * 1024 * 1024;

/**
 * zstd's default level with matches from 4 bytes instead of 5: the short
 * repeats of a serialized message (field names, key prefixes) then count
 * (3,200 instead of 3,206 bytes on the bench's 5 KiB reference) at level
 * 3's speed; level 7 gives 3,186 but took about 1.8× as long, which on a
 * small batch is more than zstd takes for the whole concatenation.
 */
const LEVEL = 3;
const MIN_MATCH = 4;
/** zstd's frame magic number, which format 4 leaves out. */
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];
/**
 * Frames from this size keep their magic (format 5): putting it back
 * costs a copy of the frame on every unpack (≈ 0.7 µs of ≈ 13 on the
 * bench's 3-packet batch, a 3.2 KB frame); below it, the 4 bytes weigh
 * more (a few changes for two learners pack to ≈ 90 bytes) and the copy
 * is cheap.
 */
const MIN_MAGIC_FRAME = 1024;

// Edits smaller than this go raw, outside the frame: inside it, their
// bytes (mostly outside the reference's alphabet) would grow the literals'
// Huffman table by more than they weigh.
const MIN_FRAMED_EDITS = 64;

// A packet whose differences from the reference fit in one region this
// small, or leave at least half of it equal at its two ends, is an edit.
const SMALL_EDIT_BYTES = 256;
// Periods tried for header fields that cycle among a few values.
const MAX_PERIOD = 4;
// A packet joins the edit group before it if the group's shared ends
// shrink by at most this many bytes (columns of zero differences are
// nearly free once coded).
const WIDEN_BYTES = 64;

interface EditGroup {
  kind: 1;
  first: number;
  /** Middle bytes before it are predicted start-aligned, after it end-aligned. */
  split: number;
  k: number;
  length: number;
  prefix: number;
  suffix: number;
  middle: number;
}

interface WholeGroup {
  kind: 0;
  first: number;
  k: number;
}

type Group = EditGroup | WholeGroup;

/**
 * Packs `packets` (at least one) in the edits format.
 * @returns the blob, or undefined when a section would exceed
 *   {@link MAX_PLAN_BYTES}.
 */
export function packEdits(
  packets: readonly Uint8Array[],
): Uint8Array<ArrayBuffer> | undefined {
  const groups = groupPackets(packets);
  const ref = packets[0]!;
  const edits: number[] = [];
  let wholeBytes = 0;
  for (const g of groups) {
    if (g.kind === 0) {
      pushVarint(edits, g.k * 8);
      for (let p = g.first; p < g.first + g.k; p++) {
        pushVarint(edits, packets[p]!.length);
        wholeBytes += packets[p]!.length;
      }
      continue;
    }
    // Every way of predicting a packet from those before it; the sparsest
    // wins (a cycling field is cheapest as a difference from a period ago).
    const m = middles(packets, g);
    const { reset, steady } = columnDiffs(m);
    let data = steady.length < reset.length ? steady : reset;
    let kind = data === steady ? 2 : 1;
    let period = 0;
    for (let q = 1; q <= MAX_PERIOD && q < g.k; q++) {
      if (!mayBeSparser(m, q, data.length)) continue;
      const d = periodicDiffs(m, q, data.length);
      if (d && d.length < data.length) [data, kind, period] = [d, 3, q];
    }
    const grow = g.length - ref.length;
    // Most groups neither split nor change length: a flag says so.
    const shifted = g.split !== 0 || grow !== 0;
    pushVarint(edits, g.k * 8 + (shifted ? 4 : 0) + kind);
    pushVarint(edits, g.middle);
    // Packets equal to the reference need no prefix.
    if (g.middle > 0 || shifted) pushVarint(edits, g.prefix);
    if (shifted) {
      pushVarint(edits, g.split);
      pushVarint(edits, grow < 0 ? -2 * grow - 1 : 2 * grow);
    }
    if (kind === 3) pushVarint(edits, period);
    // The last record's data runs to the end of the edits.
    if (g.first + g.k < packets.length) pushVarint(edits, data.length);
    for (const b of data) edits.push(b);
  }
  const body = ref.length + wholeBytes;
  if (body > MAX_PLAN_BYTES) return undefined;
  // The reference and the packets stored whole as an lz section (format
  // 6): no native call to decode. Sent when it is about as small as zstd's
  // frame would be, else zstd codes them too and the smaller blob goes.
  const lz = body <= MAX_LZ_BODY
    ? lzBlob(packets, groups, edits, body)
    : undefined;
  if (lz && lz.sent) return lz.blob;
  const z = zstdBlob(packets, groups, edits, body);
  return lz && lz.blob.length <= z.length ? lz.blob : z;
}

/**
 * Format 6: edits raw (or, when large enough to gain, an lz section of
 * their own: a few distinct values), then the lz section of the reference
 * and the packets stored whole. `sent`: it is at most {@link LZ_SLACK}
 * above what zstd's frame would about take, so zstd is not tried.
 */
function lzBlob(
  packets: readonly Uint8Array[],
  groups: Group[],
  edits: number[],
  body: number,
): { blob: Uint8Array<ArrayBuffer>; sent: boolean } {
  const ref = packets[0]!;
  const lz = encodeLz(
    body === ref.length ? ref : frameBody(packets, groups, [], body),
  );
  const coded = edits.length >= MIN_FRAMED_EDITS
    ? encodeLz(Uint8Array.from(edits)).bytes
    : undefined;
  const blob = coded && coded.length < edits.length
    ? blobOf(LZ_FORMAT, packets.length * 2 + 1, coded, lz.bytes)
    : blobOf(LZ_FORMAT, packets.length * 2, edits, lz.bytes);
  // What the frame would take in the blob: format 4 leaves its magic out.
  const frame = lz.zstdEstimate -
    (lz.zstdEstimate < MIN_MAGIC_FRAME ? ZSTD_MAGIC.length : 0);
  return { blob, sent: lz.bytes.length <= frame * LZ_SLACK };
}

/** Format 5 (or 4): edits raw or leading the frame, then the zstd frame. */
function zstdBlob(
  packets: readonly Uint8Array[],
  groups: Group[],
  edits: number[],
  body: number,
): Uint8Array<ArrayBuffer> {
  const ref = packets[0]!;
  // Small edits travel raw; larger ones lead the zstd frame (one zstd
  // call: each costs a fixed setup that dominates a small batch).
  const framed = edits.length >= MIN_FRAMED_EDITS;
  const size = (framed ? edits.length : 0) + body;
  let frame = zstd(
    // The usual fan-out batch: the frame holds the reference alone.
    size === ref.length
      ? ref
      : frameBody(packets, groups, framed ? edits : [], size),
  );
  const format = frame.length >= MIN_MAGIC_FRAME
    ? EDITS_FORMAT
    : MAGICLESS_EDITS_FORMAT;
  if (format === MAGICLESS_EDITS_FORMAT) {
    frame = frame.subarray(ZSTD_MAGIC.length);
  }
  return blobOf(
    format,
    packets.length * 2 + (framed ? 1 : 0),
    framed ? [] : edits,
    frame,
    framed ? edits.length : undefined,
  );
}

/**
 * `u8 format · varint head · varint editsLength · before · section`, the
 * edits' length that of `before` unless given (edits inside the frame).
 */
function blobOf(
  format: number,
  head: number,
  before: ArrayLike<number>,
  section: Uint8Array,
  editsLength = before.length,
): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(
    1 + varintLength(head) + varintLength(editsLength) + before.length +
      section.length,
  );
  out[0] = format;
  let at = writeVarint(out, 1, head);
  at = writeVarint(out, at, editsLength);
  out.set(before, at);
  out.set(section, at + before.length);
  return out;
}

/** What the zstd frame codes (`size` bytes): [edits] · reference · wholes. */
function frameBody(
  packets: readonly Uint8Array[],
  groups: Group[],
  edits: number[],
  size: number,
): Uint8Array {
  const body = new Uint8Array(size);
  body.set(edits);
  let at = edits.length;
  body.set(packets[0]!, at);
  at += packets[0]!.length;
  for (const g of groups) {
    if (g.kind !== 0) continue;
    for (let p = g.first; p < g.first + g.k; p++) {
      body.set(packets[p]!, at);
      at += packets[p]!.length;
    }
  }
  return body;
}

/** Splits packets 1… into runs of edits of the reference and of wholes. */
function groupPackets(packets: readonly Uint8Array[]): Group[] {
  const ref = packets[0]!;
  const groups: Group[] = [];
  let last: Group | undefined;
  for (let p = 1; p < packets.length; p++) {
    const packet = packets[p]!;
    if (
      last && last.kind !== 0 && last.length === packet.length &&
      sameEnds(ref, packet, last.prefix, last.suffix)
    ) {
      // The usual fan-out case: differs from the reference only where the
      // group's packets already do. Two memcmps, no search.
      last.k++;
      continue;
    }
    const limit = Math.min(ref.length, packet.length);
    const prefix = commonPrefix(ref, packet, limit);
    const suffix = commonSuffix(ref, packet, limit - prefix);
    const middle = packet.length - prefix - suffix;
    if (
      middle > SMALL_EDIT_BYTES && 2 * (prefix + suffix) < packet.length
    ) {
      if (last?.kind === 0) last.k++;
      else groups.push(last = { kind: 0, first: p, k: 1 });
      continue;
    }
    if (last && last.kind !== 0 && last.length === packet.length) {
      const pre = Math.min(last.prefix, prefix);
      const suf = Math.min(last.suffix, suffix);
      const mid = packet.length - pre - suf;
      if (mid <= last.middle + WIDEN_BYTES) {
        last.prefix = pre;
        last.suffix = suf;
        last.middle = mid;
        last.k++;
        continue;
      }
    }
    groups.push(
      last = {
        kind: 1,
        split: 0,
        first: p,
        k: 1,
        length: packet.length,
        prefix,
        suffix,
        middle,
      },
    );
  }
  // Predict each group's middles from the reference start-aligned up to a
  // split and end-aligned after it, the split where its first packet
  // differs least: a field that grew or shrank shifts what follows it.
  for (const g of groups) {
    if (g.kind === 0) continue;
    const first = packets[g.first]!;
    const endAt = ref.length - g.suffix - g.middle;
    // Mismatches with the split at 0 (all end-aligned), then moving it.
    let cost = 0;
    for (let c = 0; c < g.middle; c++) {
      if (first[g.prefix + c] !== (ref[endAt + c] ?? 0)) cost++;
    }
    let best = cost;
    g.split = 0;
    for (let c = 0; c < g.middle; c++) {
      const v = first[g.prefix + c];
      if (v !== (ref[endAt + c] ?? 0)) cost--;
      if (v !== (ref[g.prefix + c] ?? 0)) cost++;
      if (cost < best) {
        best = cost;
        g.split = c + 1;
      }
    }
  }
  return groups;
}

function pushVarint(out: number[], value: number): void {
  while (value >= 0x80) {
    out.push((value & 0x7f) | 0x80);
    value = Math.floor(value / 0x80);
  }
  out.push(value);
}

// A value and the zeros before it: one byte when the run is short and the
// value small (a digit or a counter that moved by a few, the usual header
// edit), else the run (escaped when long) and the value byte.
const LONG_RUN = 0x7f;

function pushValue(out: number[], zeros: number, e: number): void {
  const signed = e < 128 ? e : e - 256;
  const zz = signed < 0 ? -2 * signed - 1 : 2 * signed;
  if (zeros < 4 && zz < 32) {
    out.push(0x80 | (zeros << 5) | zz);
    return;
  }
  if (zeros < LONG_RUN) out.push(zeros);
  else {
    out.push(LONG_RUN);
    pushVarint(out, zeros - LONG_RUN);
  }
  out.push(e);
}

/** An edit group's middles, row by row, and the bytes predicting them. */
interface Middles {
  /** k × width bytes: row j is packet `first + j`'s middle. */
  rows: Uint8Array;
  k: number;
  width: number;
  /** What byte c of a middle is predicted from at first. */
  base: Uint8Array;
}

function middles(packets: readonly Uint8Array[], g: EditGroup): Middles {
  const { k, first, prefix, middle } = g;
  // One flat matrix (a native copy per packet) keeps the column passes
  // on one typed array instead of k packets.
  const rows = new Uint8Array(k * middle);
  for (let j = 0; j < k; j++) {
    rows.set(
      packets[first + j]!.subarray(prefix, prefix + middle),
      j * middle,
    );
  }
  const base = new Uint8Array(middle);
  for (let c = 0; c < middle; c++) base[c] = baseByte(packets[0]!, g, c);
  return { rows, k, width: middle, base };
}

/**
 * An edit group's `data`, both ways (one pass): its middles' second
 * differences, sparse. `steady`: the first packet's difference from the
 * reference counts as a step (a counter keeps going); `reset`: the second
 * packet starts afresh.
 */
function columnDiffs(m: Middles): { reset: number[]; steady: number[] } {
  const { rows, k, width, base } = m;
  const reset: number[] = [];
  const steady: number[] = [];
  let zerosR = 0;
  let zerosS = 0;
  for (let c = 0; c < width; c++) {
    let prev = base[c]!;
    let prevD = 0;
    for (let j = 0, x = c; j < k; j++, x += width) {
      const v = rows[x]!;
      const d = v - prev;
      prev = v;
      const e = (d - prevD) & 0xff;
      // The two differ only at the second packet.
      const eR = j === 1 ? d & 0xff : e;
      prevD = d;
      if (e === 0) zerosS++;
      else {
        pushValue(steady, zerosS, e);
        zerosS = 0;
      }
      if (eR === 0) zerosR++;
      else {
        pushValue(reset, zerosR, eR);
        zerosR = 0;
      }
    }
  }
  return { reset, steady };
}

/**
 * Whether predicting from the packet `period` before (the base for the
 * first `period`) might store fewer than `limit` bytes: each byte that
 * differs from its prediction stores at least one. A row-order scan that
 * stops once the answer is no.
 */
function mayBeSparser(m: Middles, period: number, limit: number): boolean {
  const { rows, width, base } = m;
  let changes = 0;
  const head = Math.min(period * width, rows.length);
  for (let x = 0; x < head; x++) {
    if (rows[x] !== base[x % width] && ++changes >= limit) return false;
  }
  const back = period * width;
  for (let x = head; x < rows.length; x++) {
    if (rows[x] !== rows[x - back] && ++changes >= limit) return false;
  }
  return true;
}

/**
 * An edit group's `data` as differences from the packet `period` before
 * (the reference for the first `period`), sparse; undefined as soon as it
 * reaches `limit` bytes (a sparser way is already known).
 */
function periodicDiffs(
  m: Middles,
  period: number,
  limit: number,
): number[] | undefined {
  const { rows, k, width, base } = m;
  const out: number[] = [];
  const back = period * width;
  let zeros = 0;
  for (let c = 0; c < width; c++) {
    for (let j = 0, x = c; j < k; j++, x += width) {
      const pred = j < period ? base[c]! : rows[x - back]!;
      const e = (rows[x]! - pred) & 0xff;
      if (e === 0) zeros++;
      else {
        pushValue(out, zeros, e);
        zeros = 0;
        if (out.length >= limit) return undefined;
      }
    }
  }
  return out;
}

function zstd(bytes: Uint8Array): Uint8Array {
  // Window and tables sized for the input: zstd's defaults for an input of
  // unknown size (a 128 KiB hash table and a 64 KiB chain at level 3) cost
  // more to clear than a small batch costs to code. Tables of a quarter of
  // the window find the same matches in a serialized message (measured:
  // the same size on the bench's 5 KiB reference) and clear faster.
  const log = Math.min(
    Math.max(32 - Math.clz32(Math.max(bytes.length - 1, 1)), 10),
    24,
  );
  return zstdCompressSync(bytes, {
    // The frame states its content size (unpacking then allocates exactly
    // that, see unzstd): 1 byte more than a window size for 256 B–64 KiB,
    // none below, 3 above.
    pledgedSrcSize: bytes.length,
    params: {
      [zlib.ZSTD_c_compressionLevel]: LEVEL,
      [zlib.ZSTD_c_minMatch]: MIN_MATCH,
      [zlib.ZSTD_c_windowLog]: log,
      [zlib.ZSTD_c_hashLog]: Math.min(Math.max(log - 2, 10), 17),
      [zlib.ZSTD_c_chainLog]: Math.min(Math.max(log - 2, 10), 16),
      [zlib.ZSTD_c_contentSizeFlag]: 1,
    },
  });
}

/**
 * Decodes a zstd frame (put its magic number back first when format 4
 * left it out). The result is fresh memory no one else holds, so a packet
 * may be returned as a view of it and patched in place.
 */
function unzstd(
  bytes: Uint8Array,
  magicless: boolean,
): Uint8Array<ArrayBuffer> {
  let frame = bytes;
  if (magicless) {
    frame = new Uint8Array(ZSTD_MAGIC.length + bytes.length);
    frame.set(ZSTD_MAGIC);
    frame.set(bytes, ZSTD_MAGIC.length);
  }
  const size = contentSize(frame);
  if (size !== undefined && size > MAX_PLAN_BYTES) {
    throw malformed(`frame of ${size} bytes announced`);
  }
  try {
    // Output in one buffer of the frame's size, not node:zlib's 16 KiB
    // chunks: one packet of a small batch is a third of the whole batch's
    // bytes, and a smaller buffer is faster to allocate (measured: ≈ 1 µs
    // of ≈ 12 on the bench's 3-packet batch). zstd refuses a frame that
    // decodes to another size than it states; node:zlib stops at the
    // bound besides.
    const b = zstdDecompressSync(
      frame,
      size === undefined
        ? { maxOutputLength: MAX_PLAN_BYTES }
        : { chunkSize: Math.max(size + 1, 64), maxOutputLength: size || 1 },
    );
    // A plain view: a Buffer's slice() would not copy.
    return new Uint8Array(b.buffer as ArrayBuffer, b.byteOffset, b.length);
  } catch (e) {
    throw malformed(`zstd: ${e instanceof Error ? e.message : String(e)}`);
  }
}

const DICT_ID_BYTES = [0, 1, 2, 4];

/**
 * The content size a zstd frame's header states (RFC 8878, 3.1.1.1), or
 * undefined when it states none or is cut short (zstd then says why).
 */
function contentSize(frame: Uint8Array): number | undefined {
  const fhd = frame[ZSTD_MAGIC.length];
  if (fhd === undefined) return undefined;
  const flag = fhd >> 6;
  const single = (fhd >> 5) & 1;
  const at = ZSTD_MAGIC.length + 1 + (1 - single) + DICT_ID_BYTES[fhd & 3]!;
  const bytes = flag === 0 ? single : 1 << flag;
  if (bytes === 0 || at + bytes > frame.length) return undefined;
  let size = 0;
  for (let b = Math.min(bytes, 7) - 1; b >= 0; b--) {
    size = size * 256 + frame[at + b]!;
  }
  if (bytes === 8 && frame[at + 7] !== 0) return Number.MAX_SAFE_INTEGER;
  return bytes === 2 ? size + 256 : size;
}

/** A decoded blob: the reference and each group's place in the sections. */
interface Plan {
  n: number;
  plain: Uint8Array<ArrayBuffer>;
  edits: Uint8Array;
  ref: Uint8Array<ArrayBuffer>;
  groups: ParsedGroup[];
}

interface ParsedGroup {
  kind: number;
  first: number;
  k: number;
  prefix: number;
  suffix: number;
  middle: number;
  split: number;
  /** Kind 3: differences are from the packet this many before. */
  period: number;
  /** Where its record's data (lengths or differences) is in `edits`. */
  at: number;
  end: number;
  /** Kind 0: where its first packet starts in `plain`. */
  plainAt: number;
}

/**
 * Reads an edits blob (format 5, or 4): header, both sections, every
 * record.
 */
export function readEdits(blob: Uint8Array, maxPackets: number): Plan {
  const magicless = blob[0] === MAGICLESS_EDITS_FORMAT;
  const { value: head, next } = blobVarint(blob, 1);
  const n = Math.floor(head / 2);
  if (n < 1 || n > maxPackets) throw malformed(`${n} packets announced`);
  const e = blobVarint(blob, next);
  let edits: Uint8Array;
  let plain: Uint8Array<ArrayBuffer>;
  if (head % 2 === 0) {
    const editsEnd = e.next + e.value;
    if (editsEnd >= blob.length) throw malformed("ends inside the edits");
    edits = blob.subarray(e.next, editsEnd);
    plain = blob[0] === LZ_FORMAT
      ? decodeLz(blob, editsEnd, blob.length)
      : unzstd(blob.subarray(editsEnd), magicless);
  } else if (blob[0] === LZ_FORMAT) {
    // Format 6: the edits are an lz section of their own.
    const editsEnd = e.next + e.value;
    if (editsEnd >= blob.length) throw malformed("ends inside the edits");
    edits = decodeLz(blob, e.next, editsEnd);
    plain = decodeLz(blob, editsEnd, blob.length);
  } else {
    const body = unzstd(blob.subarray(e.next), magicless);
    if (e.value > body.length) throw malformed("frame shorter than its edits");
    edits = body.subarray(0, e.value);
    plain = body.subarray(e.value);
  }
  // Records first: the packets stored whole say where the reference ends.
  const groups: ParsedGroup[] = [];
  let first = 1;
  let at = 0;
  let wholeBytes = 0;
  while (at < edits.length) {
    const head = blobVarint(edits, at);
    at = head.next;
    const kind = head.value % 4;
    const shifted = head.value % 8 >= 4;
    const k = Math.floor(head.value / 8);
    if (kind === 0 && shifted) throw malformed("record of kind 4");
    if (k < 1 || first + k > n) throw malformed("records past the count");
    if (kind === 0) {
      const start = at;
      for (let j = 0; j < k; j++) {
        const l = blobVarint(edits, at);
        at = l.next;
        wholeBytes += l.value;
        if (wholeBytes > plain.length) {
          throw malformed("packets past the frame");
        }
      }
      groups.push({
        kind,
        first,
        k,
        prefix: 0,
        suffix: 0,
        middle: 0,
        split: 0,
        period: 0,
        at: start,
        end: at,
        plainAt: 0,
      });
    } else {
      const mid = blobVarint(edits, at);
      const pre = mid.value > 0 || shifted
        ? blobVarint(edits, mid.next)
        : { value: 0, next: mid.next };
      const none = { value: 0, next: pre.next };
      const split = shifted ? blobVarint(edits, pre.next) : none;
      const grow = shifted ? blobVarint(edits, split.next) : none;
      const period = kind === 3
        ? blobVarint(edits, grow.next)
        : { value: 0, next: grow.next };
      if (kind === 3 && period.value < 1) throw malformed("period 0");
      const data = first + k < n
        ? blobVarint(edits, period.next)
        : { value: edits.length - period.next, next: period.next };
      if (split.value > mid.value) throw malformed("split past the middle");
      at = data.next;
      if (at + data.value > edits.length) {
        throw malformed("ends inside an edit");
      }
      groups.push({
        kind,
        first,
        k,
        prefix: pre.value,
        // Until the reference's length is known: the zigzag growth.
        suffix: grow.value,
        middle: mid.value,
        split: split.value,
        period: period.value,
        at,
        end: at + data.value,
        plainAt: 0,
      });
      at += data.value;
    }
    first += k;
  }
  if (first !== n) throw malformed(`records cover ${first} of ${n} packets`);
  const refLength = plain.length - wholeBytes;
  const ref = plain.subarray(0, refLength);
  let plainAt = refLength;
  for (const g of groups) {
    if (g.kind === 0) {
      g.plainAt = plainAt;
      let l = g.at;
      for (let j = 0; j < g.k; j++) {
        const v = blobVarint(edits, l);
        plainAt += v.value;
        l = v.next;
      }
      continue;
    }
    const z = g.suffix;
    const length = refLength + (z % 2 === 0 ? z / 2 : -(z + 1) / 2);
    g.suffix = length - g.prefix - g.middle;
    if (length < 0 || g.suffix < 0 || g.prefix + g.suffix > refLength) {
      throw malformed("edit ends past the reference");
    }
    // What pack makes an edit (see SMALL_EDIT_BYTES): this bounds what a
    // small blob can make unpacking allocate.
    if (length > Math.max(SMALL_EDIT_BYTES + refLength, 2 * refLength)) {
      throw malformed("edit longer than an edit can be");
    }
  }
  return { n, plain, edits, ref, groups };
}

/** Packet `j` of a group stored whole: a view of the decoded bytes. */
function wholePacket(
  plan: Plan,
  g: ParsedGroup,
  j: number,
): Uint8Array<ArrayBuffer> {
  let at = g.at;
  let start = g.plainAt;
  for (let s = 0; s < j; s++) {
    const l = blobVarint(plan.edits, at);
    start += l.value;
    at = l.next;
  }
  return plan.plain.subarray(
    start,
    start + blobVarint(plan.edits, at).value,
  );
}

/**
 * Every packet of a decoded blob, in order.
 * @throws TransportError `protocol_error` when they would exceed
 *   `maxBytes` in all (a small blob can describe many large packets).
 */
export function planPackets(
  plan: Plan,
  maxBytes: number,
): Uint8Array<ArrayBuffer>[] {
  let total = plan.plain.length;
  for (const g of plan.groups) {
    if (g.kind !== 0) total += g.k * (g.prefix + g.middle + g.suffix);
  }
  if (total > maxBytes) {
    throw malformed(`unpacks to ${total} bytes (at most ${maxBytes})`);
  }
  const out = [plan.ref.slice()];
  for (const g of plan.groups) {
    if (g.kind === 0) {
      for (let j = 0; j < g.k; j++) out.push(wholePacket(plan, g, j).slice());
      continue;
    }
    const rows = Array.from({ length: g.k }, () => shell(plan.ref, g));
    // Place each value, then sum every column down the group twice.
    forEachValue(plan.edits, g, (pos, e) => {
      const c = Math.floor(pos / g.k);
      rows[pos - c * g.k]![g.prefix + c] = e;
    });
    for (let c = 0; c < g.middle; c++) {
      const x = g.prefix + c;
      if (g.kind === 3) {
        const b = baseByte(plan.ref, g, c);
        rows.forEach((row, j) => {
          const pred = j < g.period ? b : rows[j - g.period]![x]!;
          row[x] = (pred + row[x]!) & 0xff;
        });
        continue;
      }
      let v = baseByte(plan.ref, g, c);
      let d = 0;
      rows.forEach((row, j) => {
        if (j === 0) {
          row[x] = v = (v + row[x]!) & 0xff;
          if (g.kind === 2) d = row[x]! - baseByte(plan.ref, g, c);
        } else {
          d = (d + row[x]!) & 0xff;
          row[x] = v = (v + d) & 0xff;
        }
      });
    }
    out.push(...rows);
  }
  return out;
}

/**
 * Packet `i` (0 ≤ i < n) of a decoded blob, rebuilding only that packet.
 * It is made in the plan's own decoded bytes where it can be (the
 * reference itself, a packet stored whole, an edit of the reference's
 * length patched in place): no copy. Call it once per plan.
 */
export function takePacket(plan: Plan, i: number): Uint8Array<ArrayBuffer> {
  if (i === 0) return plan.ref;
  let g = plan.groups[0]!;
  for (let x = 1; i >= g.first + g.k; x++) g = plan.groups[x]!;
  const j = i - g.first;
  if (g.kind === 0) return wholePacket(plan, g, j);
  // The fan-out case: the packet has the reference's length and its
  // middle lines up with the reference's, so it is the reference with its
  // middle patched: its base bytes are already in place.
  const inPlace = g.split === 0 &&
    g.prefix + g.middle + g.suffix === plan.ref.length;
  const row = inPlace ? plan.ref : shell(plan.ref, g);
  const { k, kind, period, prefix } = g;
  if (!inPlace) {
    for (let c = 0; c < g.middle; c++) {
      row[prefix + c] = baseByte(plan.ref, g, c);
    }
  }
  // vⱼ = b + Σ(t ≤ j) wₜ·eₜ, wₜ = j − t + 1 (but w₀ = 1 when the second
  // packet starts afresh); kind 3: vⱼ = b + Σ(t ≤ j, t ≡ j mod period) eₜ.
  // Added straight into the packet's bytes, which keep them mod 256.
  forEachValue(plan.edits, g, (pos, e) => {
    const c = Math.floor(pos / k);
    const t = pos - c * k;
    if (t > j) return;
    const x = prefix + c;
    if (kind === 3) {
      if ((j - t) % period === 0) row[x] = row[x]! + e;
    } else row[x] = row[x]! + (t === 0 && kind === 1 ? e : (j - t + 1) * e);
  });
  return row;
}

/** Calls `visit(position, value)` for each non-zero value of an edit group. */
function forEachValue(
  bytes: Uint8Array,
  g: ParsedGroup,
  visit: (pos: number, value: number) => void,
): void {
  const cells = g.k * g.middle;
  let pos = 0;
  let at = g.at;
  while (at < g.end) {
    const head = bytes[at++]!;
    let value: number;
    if (head >= 0x80) {
      pos += (head >> 5) & 3;
      const zz = head & 31;
      value = (zz & 1 ? -(zz + 1) / 2 : zz / 2) & 0xff;
    } else {
      if (head < LONG_RUN) pos += head;
      else {
        const run = blobVarint(bytes, at);
        pos += LONG_RUN + run.value;
        at = run.next;
      }
      if (at >= g.end) throw malformed("edit past its group");
      value = bytes[at++]!;
    }
    if (pos >= cells) throw malformed("edit past its group");
    visit(pos++, value);
  }
}

/** What byte `c` of an edit group's middles is predicted from at first. */
function baseByte(
  ref: Uint8Array,
  g: { prefix: number; middle: number; suffix: number; split: number },
  c: number,
): number {
  const at = c < g.split ? g.prefix + c : ref.length - g.suffix - g.middle + c;
  return ref[at] ?? 0;
}

/** A packet of an edit group with its shared ends filled in. */
function shell(ref: Uint8Array, g: ParsedGroup): Uint8Array<ArrayBuffer> {
  const row = new Uint8Array(g.prefix + g.middle + g.suffix);
  row.set(ref.subarray(0, g.prefix));
  row.set(ref.subarray(ref.length - g.suffix), g.prefix + g.middle);
  return row;
}

/** `packet` equals `ref` in its first `prefix` and last `suffix` bytes. */
function sameEnds(
  ref: Uint8Array,
  packet: Uint8Array,
  prefix: number,
  suffix: number,
): boolean {
  return Buffer.compare(ref.subarray(0, prefix), packet.subarray(0, prefix)) ===
      0 &&
    Buffer.compare(
        ref.subarray(ref.length - suffix),
        packet.subarray(packet.length - suffix),
      ) === 0;
}

// Equal-range tests use Buffer.compare (native memcmp, no copy). One probe
// where the answer usually lies (differences are short: near the start for
// the prefix, a little before the end for the suffix), bisection down to 64
// bytes, then a byte loop: a handful of native calls per packet.
function longestEqual(
  eq: (from: number, to: number) => boolean,
  max: number,
  probe: number,
): number {
  // eq(from, to): the `from`-th to `to`-th bytes (counted from the start
  // for a prefix, from the end for a suffix) are equal. Each test covers
  // only bytes not yet known equal.
  if (max === 0 || eq(0, max)) return max;
  let lo = 0;
  let hi = max; // the first lo bytes are equal, the first hi are not
  if (probe > 0 && probe < max) {
    if (eq(0, probe)) lo = probe;
    else hi = probe;
  }
  while (hi - lo > 64) {
    const mid = (lo + hi) >>> 1;
    if (eq(lo, mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

function commonPrefix(a: Uint8Array, b: Uint8Array, max: number): number {
  const eq = (from: number, to: number) =>
    Buffer.compare(a.subarray(from, to), b.subarray(from, to)) === 0;
  let n = longestEqual(eq, max, 64);
  while (n < max && a[n] === b[n]) n++;
  return n;
}

function commonSuffix(a: Uint8Array, b: Uint8Array, max: number): number {
  const la = a.length;
  const lb = b.length;
  // Views rather than compare()'s range arguments: Deno's polyfill checks
  // the target's range against the source's length.
  const eq = (from: number, to: number) =>
    Buffer.compare(
      a.subarray(la - to, la - from),
      b.subarray(lb - to, lb - from),
    ) === 0;
  let n = longestEqual(eq, max, max - SMALL_EDIT_BYTES);
  while (n < max && a[la - 1 - n] === b[lb - 1 - n]) n++;
  return n;
}
