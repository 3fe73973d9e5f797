import { readVarint, varintLength, writeVarint } from "@strata/codec";
import { bitmapBytes, hasBit, onlyFirstBits } from "./presence_bitmap.ts";
import { TransportError } from "./transport_error.ts";

/**
 * Format 1 of multi-packet compression, the chunk layout: packets as runs
 * of bytes each tagged with the packets that hold it.
 *
 * ```
 * u8 1 · varint packetCount · varint bodyLength · chunk*
 * chunk = varint membership · [bitmap] · varint length (≥ 1) · bytes
 * membership: 0 = every packet; 1 = a presence bitmap of ceil(count/8)
 *             bytes follows (bit i: packet i holds the chunk);
 *             2 + i = packet i alone
 * ```
 *
 * Packet `i` is the concatenation, in blob order, of the chunks it holds;
 * `bodyLength` lets a blob cut short at a chunk boundary be detected.
 * `pack` writes it only in its plainest form, one chunk per non-empty
 * packet, as the fallback when compression would not pay: that is the
 * worst-case size of every blob ({@link plainChunksSize}). Blobs with
 * shared chunks (what earlier versions wrote) are still read.
 */
export const CHUNKS_FORMAT = 1;

/** Size of the plain chunk layout of `packets`, in bytes. */
export function plainChunksSize(packets: readonly Uint8Array[]): number {
  const body = plainBody(packets);
  return 1 + varintLength(packets.length) + varintLength(body) + body;
}

function plainBody(packets: readonly Uint8Array[]): number {
  let body = 0;
  packets.forEach((p, i) => {
    if (p.length > 0) {
      body += varintLength(2 + i) + varintLength(p.length) + p.length;
    }
  });
  return body;
}

/** Writes `packets` as the plain chunk layout. */
export function writePlainChunks(
  packets: readonly Uint8Array[],
): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(plainChunksSize(packets));
  out[0] = CHUNKS_FORMAT;
  let at = writeVarint(out, 1, packets.length);
  at = writeVarint(out, at, plainBody(packets));
  packets.forEach((p, i) => {
    if (p.length === 0) return;
    at = writeVarint(out, at, 2 + i);
    at = writeVarint(out, at, p.length);
    out.set(p, at);
    at += p.length;
  });
  return out;
}

/** The error every malformed blob raises. */
export function malformed(why: string): TransportError {
  return new TransportError("protocol_error", `malformed packed blob: ${why}`);
}

/** Reads a varint, a malformed blob's error when it is bad or cut short. */
export function blobVarint(
  blob: Uint8Array,
  at: number,
): { value: number; next: number } {
  try {
    return readVarint(blob, at);
  } catch {
    throw malformed("bad varint");
  }
}

/** One parsed chunk header: who holds it and where its bytes are. */
interface ChunkView {
  tag: number;
  bitmap: Uint8Array | undefined;
  start: number;
  end: number;
}

/** Parses a chunk-layout header (after the format byte). */
export function readChunksHeader(
  blob: Uint8Array,
  maxPackets: number,
): { n: number; at: number } {
  const { value: n, next } = blobVarint(blob, 1);
  if (n > maxPackets) throw malformed(`${n} packets announced`);
  const body = blobVarint(blob, next);
  if (body.value !== blob.length - body.next) {
    throw malformed(
      `body of ${body.value} bytes announced, ${
        blob.length - body.next
      } present`,
    );
  }
  return { n, at: body.next };
}

function* chunks(
  blob: Uint8Array,
  n: number,
  at: number,
): Generator<ChunkView> {
  const mapBytes = bitmapBytes(n);
  while (at < blob.length) {
    const t = blobVarint(blob, at);
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
    const len = blobVarint(blob, at);
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

/** Restores every packet of a chunk-layout blob. */
export function unpackChunks(
  blob: Uint8Array,
  maxPackets: number,
): Uint8Array<ArrayBuffer>[] {
  const { n, at } = readChunksHeader(blob, maxPackets);
  const views = [...chunks(blob, n, at)];
  const sizes = new Array<number>(n).fill(0);
  for (const c of views) {
    for (let i = 0; i < n; i++) if (holds(c, i)) sizes[i]! += c.end - c.start;
  }
  const out = sizes.map((s) => new Uint8Array(s));
  const fill = new Array<number>(n).fill(0);
  for (const c of views) {
    for (let i = 0; i < n; i++) {
      if (!holds(c, i)) continue;
      out[i]!.set(blob.subarray(c.start, c.end), fill[i]);
      fill[i]! += c.end - c.start;
    }
  }
  return out;
}

/** Extracts packet `i` (already range-checked) of a chunk-layout blob. */
export function unpackOneChunk(
  blob: Uint8Array,
  n: number,
  at: number,
  i: number,
): Uint8Array<ArrayBuffer> {
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
