import {
  malformed,
  PLAIN_FORMAT,
  plainSize,
  readPlain,
  writePlain,
} from "./packed_plain.ts";
import {
  EDITS_FORMAT,
  LZ_FORMAT,
  MAGICLESS_EDITS_FORMAT,
  packEdits,
  planPackets,
  readEdits,
  takePacket,
} from "./packed_edits.ts";

/**
 * Multi-packet compression for fan-out: one blob carries many similar
 * packets bound for different receivers (one AppendEntries with a
 * different header per follower), content they share stored once and the
 * rest entropy-coded, and any one packet can be extracted alone.
 *
 * The first byte of a blob is its format:
 *
 * - **6, reference and edits, lz section** (packed_edits.ts,
 *   packed_lz.ts): packet 0 is the reference; each other packet is an
 *   edit of it (the reference's ends around its own middle, middles stored
 *   column by column as differences from the previous packets') or stored
 *   whole; the reference and the packets stored whole are an LZ section
 *   whose literal runs of a small alphabet (base64, digits…) are packed
 *   into k-bit codes, decoded in JavaScript without a zstd call. What
 *   {@link pack} writes when it is about as small as zstd would be
 *   ({@link PACK_VERSION}).
 * - **5, reference and edits, zstd**: the same coded with zstd, written
 *   when that is smaller (text literals); **4** is the same less zstd's
 *   magic number, for frames under 1 KiB.
 * - **3, plain** (packed_plain.ts): the packets back to back after their
 *   run-length encoded sizes, written when the edits format would not be
 *   smaller (unrelated or incompressible packets).
 *
 * (Formats 1 and 2, written by earlier versions, are no longer read:
 * nothing ever stored or sent them.)
 *
 * Worst case, for every input: the plain layout,
 *
 * ```
 * size ≤ 1 + varintLength(n) + Σ(runs of equal sizes) (varintLength(count)
 *        + varintLength(size)) + Σ|pᵢ|
 * ```
 *
 * i.e. the plain concatenation plus run-length encoded sizes and a header
 * of 1 + varintLength(n) bytes ({@link packedSizeBound}): n bytes under the
 * bound "one byte per receiver plus run-length encoded sizes".
 */
export const PACK_VERSION = LZ_FORMAT;

/** Most packets a blob may announce; bounds what unpacking allocates. */
export const MAX_PACKED_PACKETS = 65_536;

/**
 * Most bytes the packets of one blob may add up to: `pack` refuses more,
 * `unpack` rejects a blob that would unpack to more (a small blob can
 * describe many copies of a large packet).
 */
export const MAX_UNPACKED_BYTES = 256 * 1024 * 1024;

/** The worst-case size of `pack(packets)` in bytes (see the format above). */
export function packedSizeBound(packets: readonly Uint8Array[]): number {
  return plainSize(packets);
}

/**
 * Packs `packets` into one blob; {@link unpack} and {@link unpackOne} invert
 * it. Never larger than {@link packedSizeBound}.
 */
export function pack(packets: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  if (packets.length > MAX_PACKED_PACKETS) {
    throw new RangeError(`at most ${MAX_PACKED_PACKETS} packets per blob`);
  }
  const total = packets.reduce((n, p) => n + p.length, 0);
  if (total > MAX_UNPACKED_BYTES) {
    throw new RangeError(`at most ${MAX_UNPACKED_BYTES} bytes per blob`);
  }
  const edits = packets.length > 0 ? packEdits(packets) : undefined;
  return edits && edits.length < plainSize(packets)
    ? edits
    : writePlain(packets);
}

function format(blob: Uint8Array): number {
  if (blob.length === 0) throw malformed("empty");
  const f = blob[0]!;
  if (
    f !== PLAIN_FORMAT && f !== EDITS_FORMAT &&
    f !== MAGICLESS_EDITS_FORMAT && f !== LZ_FORMAT
  ) {
    throw malformed(
      `format ${f} (this side reads ${PLAIN_FORMAT}, ${MAGICLESS_EDITS_FORMAT}, ${EDITS_FORMAT} and ${LZ_FORMAT})`,
    );
  }
  return f;
}

/** Number of packets in a blob. @throws TransportError `protocol_error`. */
export function packedCount(blob: Uint8Array): number {
  return format(blob) === PLAIN_FORMAT
    ? readPlain(blob, MAX_PACKED_PACKETS).length - 1
    : readEdits(blob, MAX_PACKED_PACKETS).n;
}

/**
 * Restores every packet of a blob made by {@link pack}, in order.
 * @throws TransportError `protocol_error` when the blob is malformed or
 *   would unpack to more than {@link MAX_UNPACKED_BYTES}.
 */
export function unpack(blob: Uint8Array): Uint8Array<ArrayBuffer>[] {
  if (format(blob) === PLAIN_FORMAT) {
    const starts = readPlain(blob, MAX_PACKED_PACKETS);
    return starts.slice(1).map((end, i) => blob.slice(starts[i], end));
  }
  return planPackets(readEdits(blob, MAX_PACKED_PACKETS), MAX_UNPACKED_BYTES);
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
  if (format(blob) === PLAIN_FORMAT) {
    const starts = readPlain(blob, MAX_PACKED_PACKETS);
    checkIndex(i, starts.length - 1);
    return blob.slice(starts[i], starts[i + 1]);
  }
  const plan = readEdits(blob, MAX_PACKED_PACKETS);
  checkIndex(i, plan.n);
  return takePacket(plan, i);
}

function checkIndex(i: number, n: number): void {
  if (!Number.isInteger(i) || i < 0 || i >= n) {
    throw new RangeError(`packet ${i} of ${n}`);
  }
}
