import { isCodecError, openEnvelope, sealEnvelope } from "@strata/codec";

/** Envelope kind of needle index checkpoint files. */
export const CHECKPOINT_KIND = "HIDX";
const VERSION = 1;
const ENTRY_BYTES = 25;

/** Where a live needle is, as kept in memory and in checkpoints. */
export interface NeedleLocation {
  /** The needle's key. */
  key: number;
  /** Its alternate key. */
  altKey: number;
  /** Byte offset of the needle in the volume file. */
  offset: number;
  /** Data size, bytes. */
  size: number;
  /** Flag bits as of the checkpoint. */
  flags: number;
}

/** Contents of an index checkpoint. */
export interface NeedleIndexCheckpoint {
  /** Identity of the volume file it describes (changes on compaction). */
  generation: number;
  /** Volume bytes it covers: needles below this offset are in `entries`. */
  coveredBytes: number;
  /** Live needles. */
  entries: NeedleLocation[];
}

function setU64(view: DataView, off: number, n: number): void {
  view.setUint32(off, n % 2 ** 32, true);
  view.setUint32(off + 4, Math.floor(n / 2 ** 32), true);
}

function getU64(view: DataView, off: number): number {
  return view.getUint32(off, true) + view.getUint32(off + 4, true) * 2 ** 32;
}

/** Encodes a checkpoint as a sealed file envelope (`HIDX`, CRC32C). */
export function encodeCheckpoint(c: NeedleIndexCheckpoint): Uint8Array {
  const payload = new Uint8Array(20 + c.entries.length * ENTRY_BYTES);
  const view = new DataView(payload.buffer);
  setU64(view, 0, c.generation);
  setU64(view, 8, c.coveredBytes);
  view.setUint32(16, c.entries.length, true);
  let off = 20;
  for (const e of c.entries) {
    setU64(view, off, e.key);
    view.setUint32(off + 8, e.altKey, true);
    setU64(view, off + 12, e.offset);
    view.setUint32(off + 20, e.size, true);
    payload[off + 24] = e.flags;
    off += ENTRY_BYTES;
  }
  return sealEnvelope(CHECKPOINT_KIND, VERSION, payload);
}

/**
 * Decodes a checkpoint file.
 *
 * @returns the checkpoint, or a reason it cannot be used.
 */
export function decodeCheckpoint(
  bytes: Uint8Array,
): NeedleIndexCheckpoint | { unusable: string } {
  let payload: Uint8Array;
  try {
    payload = openEnvelope(bytes, CHECKPOINT_KIND, [VERSION]).payload;
  } catch (e) {
    if (isCodecError(e)) return { unusable: `${e.code}: ${e.message}` };
    throw e;
  }
  if (payload.length < 20) return { unusable: "payload too short" };
  const view = new DataView(
    payload.buffer,
    payload.byteOffset,
    payload.byteLength,
  );
  const count = view.getUint32(16, true);
  if (payload.length !== 20 + count * ENTRY_BYTES) {
    return { unusable: "entry count does not match the payload" };
  }
  const entries: NeedleLocation[] = [];
  let off = 20;
  for (let i = 0; i < count; i++) {
    entries.push({
      key: getU64(view, off),
      altKey: view.getUint32(off + 8, true),
      offset: getU64(view, off + 12),
      size: view.getUint32(off + 20, true),
      flags: payload[off + 24]!,
    });
    off += ENTRY_BYTES;
  }
  return {
    generation: getU64(view, 0),
    coveredBytes: getU64(view, 8),
    entries,
  };
}
