import {
  CHUNKS_FORMAT,
  malformed,
  plainChunksSize,
  readChunksHeader,
  unpackChunks,
  unpackOneChunk,
  writePlainChunks,
} from "./packed_chunks.ts";
import {
  EDITS_FORMAT,
  packEdits,
  planPacket,
  planPackets,
  readEdits,
} from "./packed_edits.ts";

/**
 * Multi-packet compression for fan-out: one blob carries many similar
 * packets bound for different receivers (one AppendEntries with a
 * different header per follower), content they share stored once and the
 * rest entropy-coded, and any one packet can be extracted alone.
 *
 * The first byte of a blob is its format:
 *
 * - **2, reference and edits** (packed_edits.ts): packet 0 is the
 *   reference; each other packet is an edit of it (the reference's ends
 *   around its own middle, middles stored column by column as differences
 *   from the previous packet's) or stored whole; the result is coded with
 *   zstd. This is what {@link pack} writes when it is smaller.
 * - **1, chunk layout** (packed_chunks.ts): chunks tagged with the packets
 *   holding them. `pack` writes its plain form, one chunk per non-empty
 *   packet, when format 2 would not be smaller (unrelated or
 *   incompressible packets).
 *
 * Worst case, for every input: the plain chunk layout,
 *
 * ```
 * body = Σ(non-empty i) (varintLength(2 + i) + varintLength(|pᵢ|) + |pᵢ|)
 * size ≤ 1 + varintLength(n) + varintLength(body) + body
 * ```
 *
 * i.e. at most 2 bytes per packet (its tag, for fewer than 16 382 packets)
 * over plain concatenation plus varint lengths, plus a header of at most
 * 1 + 3 + 8 bytes ({@link packedSizeBound}).
 */
export const PACK_VERSION = EDITS_FORMAT;

/** Most packets a blob may announce; bounds what unpacking allocates. */
export const MAX_PACKED_PACKETS = 65_536;

/** The worst-case size of `pack(packets)` in bytes (see the format above). */
export function packedSizeBound(packets: readonly Uint8Array[]): number {
  return plainChunksSize(packets);
}

/**
 * Packs `packets` into one blob; {@link unpack} and {@link unpackOne} invert
 * it. Never larger than {@link packedSizeBound}.
 */
export function pack(packets: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  if (packets.length > MAX_PACKED_PACKETS) {
    throw new RangeError(`at most ${MAX_PACKED_PACKETS} packets per blob`);
  }
  const edits = packets.length > 0 ? packEdits(packets) : undefined;
  return edits && edits.length < plainChunksSize(packets)
    ? edits
    : writePlainChunks(packets);
}

function format(blob: Uint8Array): number {
  if (blob.length === 0) throw malformed("empty");
  const f = blob[0]!;
  if (f !== CHUNKS_FORMAT && f !== EDITS_FORMAT) {
    throw malformed(
      `format ${f} (this side reads ${CHUNKS_FORMAT} and ${EDITS_FORMAT})`,
    );
  }
  return f;
}

/** Number of packets in a blob. @throws TransportError `protocol_error`. */
export function packedCount(blob: Uint8Array): number {
  return format(blob) === CHUNKS_FORMAT
    ? readChunksHeader(blob, MAX_PACKED_PACKETS).n
    : readEdits(blob, MAX_PACKED_PACKETS).n;
}

/**
 * Restores every packet of a blob made by {@link pack}, in order.
 * @throws TransportError `protocol_error` when the blob is malformed.
 */
export function unpack(blob: Uint8Array): Uint8Array<ArrayBuffer>[] {
  return format(blob) === CHUNKS_FORMAT
    ? unpackChunks(blob, MAX_PACKED_PACKETS)
    : planPackets(readEdits(blob, MAX_PACKED_PACKETS));
}

/**
 * Extracts packet `i` alone: decodes the blob's plan (the reference and
 * the edits, not every packet) and rebuilds only packet `i`.
 * @throws RangeError when `i` is out of range; TransportError
 *   `protocol_error` when the blob is malformed.
 */
export function unpackOne(
  blob: Uint8Array,
  i: number,
): Uint8Array<ArrayBuffer> {
  if (format(blob) === CHUNKS_FORMAT) {
    const { n, at } = readChunksHeader(blob, MAX_PACKED_PACKETS);
    checkIndex(i, n);
    return unpackOneChunk(blob, n, at, i);
  }
  const plan = readEdits(blob, MAX_PACKED_PACKETS);
  checkIndex(i, plan.n);
  return planPacket(plan, i);
}

function checkIndex(i: number, n: number): void {
  if (!Number.isInteger(i) || i < 0 || i >= n) {
    throw new RangeError(`packet ${i} of ${n}`);
  }
}
