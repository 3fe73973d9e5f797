import { Buffer } from "node:buffer";
import { crc32c, readVarint, varintLength, writeVarint } from "@strata/codec";
import { chunkEnds } from "./content_chunker.ts";
import { bitmapBytes, hasBit, onlyFirstBits } from "./presence_bitmap.ts";
import { TransportError } from "./transport_error.ts";

/**
 * Multi-packet compression for fan-out: one blob carries many similar
 * packets bound for different receivers, and content they share is stored
 * once.
 *
 * Format (version {@link PACK_VERSION}):
 *
 * ```
 * u8 version · varint packetCount · varint bodyLength · chunk*
 * chunk = varint membership · [bitmap] · varint length (≥ 1) · bytes
 * membership: 0 = every packet; 1 = a presence bitmap of ceil(count/8)
 *             bytes follows (bit i: packet i holds the chunk);
 *             2 + i = packet i alone
 * ```
 *
 * Packet `i` is the concatenation, in blob order, of the chunks it holds.
 * `bodyLength` is the byte length of all chunks, so a blob cut short at a
 * chunk boundary is still detected.
 *
 * The differ compares every packet with the first, in two tiers:
 *
 * 1. Edit in place (the fan-out case: one message, a different header per
 *    receiver). The common prefix and suffix with the first packet are
 *    found with a few native `memcmp`s (Buffer.compare on views: a probe
 *    where differences usually are, then bisection to 64 bytes and a byte
 *    loop). When what remains is small (≤ 256 bytes, or at most half the
 *    packet), the packet is the first packet's ends around its own middle:
 *    no chunking, no hashing, O(1) native calls per packet.
 * 2. Otherwise content-defined chunking (gear hash, content_chunker.ts).
 *    The first packet's chunks form the reference sequence; each chunk of
 *    the packet equal (CRC32C, then bytes) to a reference chunk after its
 *    previous match joins that chunk's members; the bytes between matches
 *    keep what they share with the one reference chunk they replace at its
 *    two ends, or else form a run placed before the next match (identical
 *    runs in the same place are shared). Content-defined rather than fixed
 *    blocks because a header that grows by a byte (a varint crossing 128)
 *    would shift every fixed block after it; content-defined boundaries
 *    resynchronise after the edit.
 *
 * Each step is O(bytes of the packet), so packing is linear in the total
 * input (a binary search among equal reference chunks adds a log of their
 * count); adjacent pieces with the same members are merged. Only packets
 * that share with the first are deduplicated; content that several later
 * packets share but the first lacks travels once per packet. The format
 * does no entropy coding: compressible content can be zstd-compressed after
 * packing (the bench reports both).
 *
 * Worst case: when sharing would not pay, the blob is the plain layout, one
 * chunk per non-empty packet, so for every input
 *
 * ```
 * body  = Σ(non-empty i) (varintLength(2 + i) + varintLength(|pᵢ|) + |pᵢ|)
 * size ≤ 1 + varintLength(n) + varintLength(body) + body
 * ```
 *
 * i.e. at most 2 bytes per packet (its membership tag, for fewer than
 * 16 382 packets) over plain concatenation plus varint lengths, plus a
 * header of at most 1 + 3 + 8 bytes ({@link packedSizeBound}).
 */
export const PACK_VERSION = 1;

/** Most packets a blob may announce; bounds what unpacking allocates. */
export const MAX_PACKED_PACKETS = 65_536;

/** The worst-case size of `pack(packets)` in bytes (see the format above). */
export function packedSizeBound(packets: readonly Uint8Array[]): number {
  let body = 0;
  packets.forEach((p, i) => {
    if (p.length > 0) {
      body += varintLength(2 + i) + varintLength(p.length) + p.length;
    }
  });
  return 1 + varintLength(packets.length) + varintLength(body) + body;
}

interface Piece {
  /** Ascending packet indexes holding this piece. */
  members: number[];
  /** Its bytes, as views into the input (several once merged). */
  parts: Uint8Array[];
  length: number;
}

interface Run {
  members: number[];
  parts: Uint8Array[];
  length: number;
  key: number;
}

function keyOf(bytes: Uint8Array): number {
  // Length in the high bits: a collision must also agree on length.
  return crc32c(bytes) + bytes.length * 0x100000000;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function concat(parts: Uint8Array[], length: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function sameMembers(a: number[], b: number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Packs `packets` into one blob; {@link unpack} and {@link unpackOne} invert
 * it. Never larger than {@link packedSizeBound}.
 */
export function pack(packets: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  const n = packets.length;
  if (n > MAX_PACKED_PACKETS) {
    throw new RangeError(`at most ${MAX_PACKED_PACKETS} packets per blob`);
  }
  const pieces = n < 2 ? plainPieces(packets) : sharedPieces(packets);
  const merged = mergeAdjacent(pieces);
  const size = encodedSize(merged, n);
  const bound = packedSizeBound(packets);
  return size <= bound
    ? write(merged, n, size)
    : write(plainPieces(packets), n, bound);
}

function plainPieces(packets: readonly Uint8Array[]): Piece[] {
  const out: Piece[] = [];
  packets.forEach((p, i) => {
    if (p.length > 0) out.push({ members: [i], parts: [p], length: p.length });
  });
  return out;
}

/** Packet `p` holds the first `prefix` and last `suffix` bytes of a chunk, with its own middle. */
interface Partial {
  p: number;
  prefix: number;
  suffix: number;
  middle: Uint8Array;
}

interface RefChunk {
  bytes: Uint8Array;
  /** Packets holding the whole chunk, ascending. */
  members: number[];
  /** Packets holding its two ends around their own middle bytes. */
  partials: Partial[];
}

// Sharing the ends of a chunk costs a few chunk headers: only worth it when
// at least this many bytes are shared.
const MIN_TRIM_BYTES = 12;

/** A packet equal to the first but for one middle region. */
interface Edit {
  p: number;
  prefix: number;
  suffix: number;
}

// A packet whose differences from the first fit in one region this small
// (or leave at least half of it shared at its two ends) skips chunking.
const SMALL_EDIT_BYTES = 256;

function sharedPieces(packets: readonly Uint8Array[]): Piece[] {
  const first = packets[0]!;
  const firstBuf = asBuffer(first);
  const edits: Edit[] = [];
  const chunked: number[] = [];
  for (let p = 1; p < packets.length; p++) {
    const packet = packets[p]!;
    const buf = asBuffer(packet);
    const limit = Math.min(first.length, packet.length);
    const prefix = commonPrefix(firstBuf, buf, limit);
    const suffix = commonSuffix(firstBuf, buf, limit - prefix);
    const middle = packet.length - prefix - suffix;
    if (
      prefix + suffix >= MIN_TRIM_BYTES &&
      (middle <= SMALL_EDIT_BYTES || 2 * (prefix + suffix) >= packet.length)
    ) edits.push({ p, prefix, suffix });
    else chunked.push(p);
  }
  if (chunked.length === 0) {
    // Fan-out of one message with different headers: no chunking at all.
    const whole: RefChunk = { bytes: first, members: [0], partials: [] };
    for (const e of edits) {
      whole.partials.push({
        p: e.p,
        prefix: e.prefix,
        suffix: e.suffix,
        middle: packets[e.p]!.subarray(
          e.prefix,
          packets[e.p]!.length - e.suffix,
        ),
      });
    }
    const out: Piece[] = [];
    splitReference(whole, out);
    return out;
  }
  const reference: RefChunk[] = [];
  const index = new Map<number, number[]>();
  let start = 0;
  for (const end of chunkEnds(first)) {
    const bytes = first.subarray(start, end);
    start = end;
    const key = keyOf(bytes);
    const at = index.get(key);
    if (at) at.push(reference.length);
    else index.set(key, [reference.length]);
    reference.push({ bytes, members: [0], partials: [] });
  }
  // gaps[g]: runs placed before reference[g] (g = length: after the last).
  const gaps: (Run[] | undefined)[] = new Array(reference.length + 1);
  const place = (g: number, p: number, bytes: Uint8Array) => {
    const key = keyOf(bytes);
    const runs = gaps[g] ??= [];
    for (const r of runs) {
      if (r.key === key && bytesEqual(r.parts[0]!, bytes)) {
        r.members.push(p);
        return;
      }
    }
    runs.push({ members: [p], parts: [bytes], length: bytes.length, key });
  };
  // The bytes of packet p between matches replace reference[from, to).
  // When that is one chunk, edits in place (a header field that differs)
  // keep the chunk's common start and end shared; otherwise the bytes go
  // as a run of their own.
  const settle = (
    p: number,
    pending: Uint8Array[],
    from: number,
    to: number,
  ) => {
    if (pending.length === 0) return;
    const bytes = pending.length === 1
      ? pending[0]!
      : concat(pending, pending.reduce((n, b) => n + b.length, 0));
    if (to - from === 1) {
      const ref = reference[from]!;
      const r = ref.bytes;
      const limit = Math.min(r.length, bytes.length);
      let prefix = 0;
      while (prefix < limit && r[prefix] === bytes[prefix]) prefix++;
      let suffix = 0;
      while (
        suffix < limit - prefix &&
        r[r.length - 1 - suffix] === bytes[bytes.length - 1 - suffix]
      ) suffix++;
      if (prefix + suffix >= MIN_TRIM_BYTES) {
        ref.partials.push({
          p,
          prefix,
          suffix,
          middle: bytes.subarray(prefix, bytes.length - suffix),
        });
        return;
      }
    }
    place(to, p, bytes);
  };
  const starts: number[] = [];
  let offset = 0;
  for (const r of reference) {
    starts.push(offset);
    offset += r.bytes.length;
  }
  // Packets in index order, so every member list stays ascending.
  const editOf = new Map(edits.map((e) => [e.p, e]));
  for (let p = 1; p < packets.length; p++) {
    const packet = packets[p]!;
    const edit = editOf.get(p);
    if (edit) {
      applyEdit(edit, packet, reference, starts);
      continue;
    }
    let cursor = 0; // first reference position this packet may still match
    let pending: Uint8Array[] = [];
    let s = 0;
    for (const end of chunkEnds(packet)) {
      const bytes = packet.subarray(s, end);
      s = end;
      const at = findFrom(index.get(keyOf(bytes)), cursor, reference, bytes);
      if (at < 0) {
        pending.push(bytes);
        continue;
      }
      settle(p, pending, cursor, at);
      pending = [];
      reference[at]!.members.push(p);
      cursor = at + 1;
    }
    settle(p, pending, cursor, reference.length);
  }
  const out: Piece[] = [];
  for (let g = 0; g <= reference.length; g++) {
    for (const r of gaps[g] ?? []) out.push(r);
    const ref = reference[g];
    if (ref) splitReference(ref, out);
  }
  return out;
}

/**
 * Records a packet that equals the first but for one middle region in terms
 * of the first packet's chunks: whole chunks in its shared prefix and
 * suffix, the two chunks where the edit starts and ends shared in part.
 */
function applyEdit(
  e: Edit,
  packet: Uint8Array,
  reference: RefChunk[],
  starts: number[],
): void {
  const total = reference.reduce((n, r) => n + r.bytes.length, 0);
  const suffixStart = total - e.suffix;
  const middle = packet.subarray(e.prefix, packet.length - e.suffix);
  // The chunk holding the edit's first byte (or the last chunk).
  const c1 = chunkAt(starts, Math.min(e.prefix, total - 1));
  const c2 = chunkAt(starts, Math.max(suffixStart - 1, 0));
  for (let c = 0; c < c1; c++) reference[c]!.members.push(e.p);
  const end = (c: number) => starts[c]! + reference[c]!.bytes.length;
  if (c1 >= c2 || suffixStart <= starts[c1]!) {
    // Prefix end and suffix start fall in the same chunk.
    const c = Math.min(c1, c2);
    reference[c]!.partials.push({
      p: e.p,
      prefix: Math.max(0, e.prefix - starts[c]!),
      suffix: Math.max(0, end(c) - Math.max(suffixStart, starts[c]!)),
      middle,
    });
    for (let k = c + 1; k < reference.length; k++) {
      reference[k]!.members.push(e.p);
    }
    return;
  }
  reference[c1]!.partials.push({
    p: e.p,
    prefix: e.prefix - starts[c1]!,
    suffix: 0,
    middle,
  });
  reference[c2]!.partials.push({
    p: e.p,
    prefix: 0,
    suffix: end(c2) - suffixStart,
    middle: middle.subarray(0, 0),
  });
  for (let k = c2 + 1; k < reference.length; k++) {
    reference[k]!.members.push(e.p);
  }
}

/** Index of the chunk containing byte `offset` (starts ascending). */
function chunkAt(starts: number[], offset: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (starts[mid]! <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
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

function commonPrefix(a: Buffer, b: Buffer, max: number): number {
  const eq = (from: number, to: number) =>
    Buffer.compare(a.subarray(from, to), b.subarray(from, to)) === 0;
  let n = longestEqual(eq, max, 64);
  while (n < max && a[n] === b[n]) n++;
  return n;
}

function commonSuffix(a: Buffer, b: Buffer, max: number): number {
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

/** Emits a reference chunk, cut where packets share only its ends. */
function splitReference(ref: RefChunk, out: Piece[]): void {
  const len = ref.bytes.length;
  if (ref.partials.length === 0) {
    out.push({ members: ref.members, parts: [ref.bytes], length: len });
    return;
  }
  const cuts = new Set<number>([0, len]);
  for (const q of ref.partials) {
    cuts.add(q.prefix);
    cuts.add(len - q.suffix);
  }
  const sorted = [...cuts].sort((a, b) => a - b);
  // Middles go right after their packet's prefix; equal ones are shared.
  const middles = new Map<number, Run[]>();
  for (const q of ref.partials) {
    if (q.middle.length === 0) continue;
    const key = keyOf(q.middle);
    const list = middles.get(q.prefix) ?? [];
    middles.set(q.prefix, list);
    const same = list.find((r) =>
      r.key === key && bytesEqual(r.parts[0]!, q.middle)
    );
    if (same) same.members.push(q.p);
    else {
      list.push({
        members: [q.p],
        parts: [q.middle],
        length: q.middle.length,
        key,
      });
    }
  }
  for (let k = 0; k < sorted.length; k++) {
    const a = sorted[k]!;
    for (const r of middles.get(a) ?? []) out.push(r);
    const b = sorted[k + 1];
    if (b === undefined || b === a) continue;
    // Both lists ascend (packets are visited in order): merge, no sort.
    const members: number[] = [];
    const whole = ref.members;
    let w = 0;
    for (const q of ref.partials) {
      if (b <= q.prefix || a >= len - q.suffix) {
        while (w < whole.length && whole[w]! < q.p) members.push(whole[w++]!);
        members.push(q.p);
      }
    }
    while (w < whole.length) members.push(whole[w++]!);
    out.push({ members, parts: [ref.bytes.subarray(a, b)], length: b - a });
  }
}

/** First position ≥ cursor in `positions` whose reference bytes equal `bytes`. */
function findFrom(
  positions: number[] | undefined,
  cursor: number,
  reference: { bytes: Uint8Array }[],
  bytes: Uint8Array,
): number {
  if (!positions) return -1;
  let lo = 0;
  let hi = positions.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (positions[mid]! < cursor) lo = mid + 1;
    else hi = mid;
  }
  // Equal keys almost always mean equal bytes; a CRC collision just moves on.
  for (let i = lo; i < positions.length; i++) {
    const at = positions[i]!;
    if (bytesEqual(reference[at]!.bytes, bytes)) return at;
  }
  return -1;
}

function mergeAdjacent(pieces: Piece[]): Piece[] {
  const out: Piece[] = [];
  for (const piece of pieces) {
    const last = out[out.length - 1];
    if (last && sameMembers(last.members, piece.members)) {
      last.parts.push(...piece.parts);
      last.length += piece.length;
    } else {
      out.push({
        members: piece.members,
        parts: [...piece.parts],
        length: piece.length,
      });
    }
  }
  return out;
}

function membershipTag(members: number[], n: number): number {
  if (members.length === n) return 0;
  if (members.length === 1) return 2 + members[0]!;
  return 1;
}

function bodySize(pieces: Piece[], n: number): number {
  let size = 0;
  for (const p of pieces) {
    const tag = membershipTag(p.members, n);
    size += varintLength(tag) + (tag === 1 ? bitmapBytes(n) : 0) +
      varintLength(p.length) + p.length;
  }
  return size;
}

function encodedSize(pieces: Piece[], n: number): number {
  const body = bodySize(pieces, n);
  return 1 + varintLength(n) + varintLength(body) + body;
}

function write(
  pieces: Piece[],
  n: number,
  size: number,
): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(size);
  out[0] = PACK_VERSION;
  let at = writeVarint(out, 1, n);
  at = writeVarint(out, at, bodySize(pieces, n));
  for (const p of pieces) {
    const tag = membershipTag(p.members, n);
    at = writeVarint(out, at, tag);
    if (tag === 1) {
      for (const m of p.members) out[at + (m >>> 3)]! |= 1 << (m & 7);
      at += bitmapBytes(n);
    }
    at = writeVarint(out, at, p.length);
    for (const part of p.parts) {
      out.set(part, at);
      at += part.length;
    }
  }
  return out;
}

function malformed(why: string): TransportError {
  return new TransportError("protocol_error", `malformed packed blob: ${why}`);
}

/** One parsed chunk header: who holds it and where its bytes are. */
interface ChunkView {
  tag: number;
  bitmap: Uint8Array | undefined;
  start: number;
  end: number;
}

/** Parses the blob header. @throws TransportError `protocol_error`. */
function readHeader(blob: Uint8Array): { n: number; at: number } {
  if (blob.length === 0) throw malformed("empty");
  if (blob[0] !== PACK_VERSION) {
    throw malformed(`version ${blob[0]} (this side reads ${PACK_VERSION})`);
  }
  const { value: n, next } = varint(blob, 1);
  if (n > MAX_PACKED_PACKETS) throw malformed(`${n} packets announced`);
  const body = varint(blob, next);
  if (body.value !== blob.length - body.next) {
    throw malformed(
      `body of ${body.value} bytes announced, ${
        blob.length - body.next
      } present`,
    );
  }
  return { n, at: body.next };
}

function varint(blob: Uint8Array, at: number) {
  try {
    return readVarint(blob, at);
  } catch {
    throw malformed("bad varint");
  }
}

function* chunks(
  blob: Uint8Array,
  n: number,
  at: number,
): Generator<ChunkView> {
  const mapBytes = bitmapBytes(n);
  while (at < blob.length) {
    const t = varint(blob, at);
    const tag = t.value;
    at = t.next;
    let bitmap: Uint8Array | undefined;
    if (tag === 1) {
      if (at + mapBytes > blob.length) throw malformed("ends in a bitmap");
      bitmap = blob.subarray(at, at + mapBytes);
      if (!onlyFirstBits(bitmap, n)) throw malformed("bitmap past count");
      at += mapBytes;
    } else if (tag >= 2 + n || (tag === 0 && n === 0)) {
      throw malformed(`chunk for a packet that does not exist (${tag})`);
    }
    const len = varint(blob, at);
    at = len.next;
    if (len.value === 0) throw malformed("empty chunk");
    if (at + len.value > blob.length) throw malformed("ends inside a chunk");
    yield { tag, bitmap, start: at, end: at + len.value };
    at += len.value;
  }
}

function holds(chunk: ChunkView, i: number): boolean {
  if (chunk.tag === 0) return true;
  if (chunk.tag === 1) return hasBit(chunk.bitmap!, i);
  return chunk.tag - 2 === i;
}

/** Number of packets in a blob. @throws TransportError `protocol_error`. */
export function packedCount(blob: Uint8Array): number {
  return readHeader(blob).n;
}

/**
 * Restores every packet of a blob made by {@link pack}, in order.
 * @throws TransportError `protocol_error` when the blob is malformed.
 */
export function unpack(blob: Uint8Array): Uint8Array<ArrayBuffer>[] {
  const { n, at } = readHeader(blob);
  const views = [...chunks(blob, n, at)];
  const sizes = new Array<number>(n).fill(0);
  for (const c of views) {
    const len = c.end - c.start;
    if (c.tag === 0) { for (let i = 0; i < n; i++) sizes[i]! += len; }
    else if (c.tag === 1) {
      for (let i = 0; i < n; i++) if (hasBit(c.bitmap!, i)) sizes[i]! += len;
    } else sizes[c.tag - 2]! += len;
  }
  const out = sizes.map((s) => new Uint8Array(s));
  const fill = new Array<number>(n).fill(0);
  const put = (i: number, c: ChunkView) => {
    out[i]!.set(blob.subarray(c.start, c.end), fill[i]);
    fill[i]! += c.end - c.start;
  };
  for (const c of views) {
    if (c.tag === 0) { for (let i = 0; i < n; i++) put(i, c); }
    else if (c.tag === 1) {
      for (let i = 0; i < n; i++) if (hasBit(c.bitmap!, i)) put(i, c);
    } else put(c.tag - 2, c);
  }
  return out;
}

/**
 * Extracts packet `i` alone: walks the chunk headers and copies only that
 * packet's chunks.
 * @throws RangeError when `i` is out of range; TransportError
 *   `protocol_error` when the blob is malformed.
 */
export function unpackOne(
  blob: Uint8Array,
  i: number,
): Uint8Array<ArrayBuffer> {
  const { n, at } = readHeader(blob);
  if (!Number.isInteger(i) || i < 0 || i >= n) {
    throw new RangeError(`packet ${i} of ${n}`);
  }
  const mine: ChunkView[] = [];
  let size = 0;
  for (const c of chunks(blob, n, at)) {
    if (holds(c, i)) {
      mine.push(c);
      size += c.end - c.start;
    }
  }
  const out = new Uint8Array(size);
  let fill = 0;
  for (const c of mine) {
    out.set(blob.subarray(c.start, c.end), fill);
    fill += c.end - c.start;
  }
  return out;
}
