import { readVarint, varintLength, writeVarint } from "@strata/codec";
import { TransportError } from "./transport_error.ts";

/**
 * The plain format of multi-packet compression: the packets back to back
 * after their sizes, run-length encoded (a fan-out batch's packets often
 * share a size, so a run costs two varints for any number of them).
 *
 * ```
 * u8 3 · varint packetCount · run* · packet bytes, back to back
 * run = varint count (≥ 1) · varint size   (runs cover packetCount)
 * ```
 *
 * `pack` writes it when compression would not pay; its size is the bound
 * every blob keeps ({@link plainSize}).
 */
export const PLAIN_FORMAT = 3;

/** Runs of equal sizes: [count, size] pairs covering every packet. */
function sizeRuns(packets: readonly Uint8Array[]): number[] {
  const runs: number[] = [];
  for (const p of packets) {
    if (runs.length > 0 && runs[runs.length - 1] === p.length) {
      runs[runs.length - 2]!++;
    } else runs.push(1, p.length);
  }
  return runs;
}

/** Size of the plain layout of `packets`, in bytes. */
export function plainSize(packets: readonly Uint8Array[]): number {
  let size = 1 + varintLength(packets.length);
  for (const v of sizeRuns(packets)) size += varintLength(v);
  for (const p of packets) size += p.length;
  return size;
}

/** Writes `packets` in the plain layout. */
export function writePlain(
  packets: readonly Uint8Array[],
): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(plainSize(packets));
  out[0] = PLAIN_FORMAT;
  let at = writeVarint(out, 1, packets.length);
  for (const v of sizeRuns(packets)) at = writeVarint(out, at, v);
  for (const p of packets) {
    out.set(p, at);
    at += p.length;
  }
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

/**
 * Where each packet of a plain blob starts (`n + 1` offsets, the last the
 * blob's end). The sizes must add up to exactly the bytes present, so a
 * plain blob never unpacks to more than its own size.
 */
export function readPlain(blob: Uint8Array, maxPackets: number): number[] {
  const count = blobVarint(blob, 1);
  const n = count.value;
  if (n > maxPackets) throw malformed(`${n} packets announced`);
  const runs: [number, number][] = [];
  let at = count.next;
  let covered = 0;
  let bytes = 0;
  while (covered < n) {
    const k = blobVarint(blob, at);
    const size = blobVarint(blob, k.next);
    at = size.next;
    if (k.value < 1 || covered + k.value > n) {
      throw malformed("size runs past the count");
    }
    covered += k.value;
    bytes += k.value * size.value;
    if (bytes > blob.length) throw malformed("packets past the blob");
    runs.push([k.value, size.value]);
  }
  if (at + bytes !== blob.length) {
    throw malformed(
      `packets of ${bytes} bytes announced, ${blob.length - at} present`,
    );
  }
  const starts = [at];
  for (const [k, size] of runs) {
    for (let j = 0; j < k; j++) starts.push(at += size);
  }
  return starts;
}
