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
 * The differ: every packet is cut with content-defined chunking (gear hash,
 * see content_chunker.ts). The first packet's chunks form the reference
 * sequence; each later packet walks its chunks, and a chunk equal (CRC32C,
 * then bytes) to a reference chunk after its previous match joins that
 * chunk's members; the chunks between matches form a run placed just before
 * the match (identical runs in the same place are shared too). Adjacent
 * chunks with the same members are merged. Each step is O(chunk bytes), so
 * packing is linear in the total input (a binary search among equal
 * reference chunks adds a log of their count).
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
export const MAX_PACKED_PACKETS = 1 << 20;

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

function partsEqual(a: Uint8Array[], b: Uint8Array[], length: number) {
  return bytesEqual(concat(a, length), concat(b, length));
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
export function pack(packets: readonly Uint8Array[]): Uint8Array {
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

function sharedPieces(packets: readonly Uint8Array[]): Piece[] {
  const first = packets[0]!;
  const firstEnds = chunkEnds(first);
  const reference: { bytes: Uint8Array; members: number[] }[] = [];
  const index = new Map<number, number[]>();
  let start = 0;
  for (const end of firstEnds) {
    const bytes = first.subarray(start, end);
    start = end;
    const key = keyOf(bytes);
    const at = index.get(key);
    if (at) at.push(reference.length);
    else index.set(key, [reference.length]);
    reference.push({ bytes, members: [0] });
  }
  // gaps[g]: runs placed before reference[g] (g = length: after the last).
  const gaps: (Run[] | undefined)[] = new Array(reference.length + 1);
  const place = (g: number, run: Omit<Run, "key">) => {
    const key = keyOf(concat(run.parts, run.length));
    const runs = gaps[g] ??= [];
    for (const r of runs) {
      if (
        r.key === key && r.length === run.length &&
        partsEqual(r.parts, run.parts, run.length)
      ) {
        r.members.push(run.members[0]!);
        return;
      }
    }
    runs.push({ ...run, key });
  };
  for (let p = 1; p < packets.length; p++) {
    const packet = packets[p]!;
    let cursor = 0; // first reference position this packet may still match
    let pending: Uint8Array[] = [];
    let pendingLength = 0;
    let s = 0;
    for (const end of chunkEnds(packet)) {
      const bytes = packet.subarray(s, end);
      s = end;
      const at = findFrom(index.get(keyOf(bytes)), cursor, reference, bytes);
      if (at < 0) {
        pending.push(bytes);
        pendingLength += bytes.length;
        continue;
      }
      if (pendingLength > 0) {
        place(at, { members: [p], parts: pending, length: pendingLength });
        pending = [];
        pendingLength = 0;
      }
      reference[at]!.members.push(p);
      cursor = at + 1;
    }
    if (pendingLength > 0) {
      place(reference.length, {
        members: [p],
        parts: pending,
        length: pendingLength,
      });
    }
  }
  const out: Piece[] = [];
  for (let g = 0; g <= reference.length; g++) {
    for (const r of gaps[g] ?? []) out.push(r);
    const ref = reference[g];
    if (ref) {
      out.push({
        members: ref.members,
        parts: [ref.bytes],
        length: ref.bytes.length,
      });
    }
  }
  return out;
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

function write(pieces: Piece[], n: number, size: number): Uint8Array {
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
export function unpack(blob: Uint8Array): Uint8Array[] {
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
export function unpackOne(blob: Uint8Array, i: number): Uint8Array {
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
