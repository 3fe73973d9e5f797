import { crc32c } from "@strata/codec";
import {
  blockBytes,
  decodeBlock,
  encodeBlockInto,
  type LogEntry,
} from "./log_format.ts";

/** One tablet's part of a server log block: its store and its entries. */
export interface LogSection {
  /** The tablet's store name (`<table>/<tablet id>`). */
  dir: string;
  /** Its entries (records and start marks, `log_format.ts`). */
  entries: LogEntry[];
}

const HEADER = 4 + 2;
const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * Encodes the sections of one server log block (one GFS record append
 * carrying the writes of several tablets: group commit across the
 * server's tablets). Each section is `u32 CRC32C of the rest, u16 store
 * name length, name, u32 body length, body` (little endian), the body
 * being the tablet's entries as {@link encodeBlock} writes them (each
 * entry with its own CRC, epoch and index).
 */
export function encodeSections(sections: readonly LogSection[]): Uint8Array {
  const parts = sections.map((s) => ({
    name: enc.encode(s.dir),
    entries: s.entries,
    bodyBytes: blockBytes(s.entries),
  }));
  let n = 0;
  for (const p of parts) n += HEADER + p.name.length + 4 + p.bodyBytes;
  // Each section's entries are written in place (no block of their own
  // copied in): this runs once per log block, on the write path.
  const out = new Uint8Array(n);
  const v = new DataView(out.buffer);
  let o = 0;
  for (const p of parts) {
    v.setUint16(o + 4, p.name.length, true);
    out.set(p.name, o + HEADER);
    const b = o + HEADER + p.name.length;
    v.setUint32(b, p.bodyBytes, true);
    const end = encodeBlockInto(out, b + 4, p.entries);
    v.setUint32(o, crc32c(out.subarray(o + 4, end)), true);
    o = end;
  }
  return out;
}

/**
 * Decodes a block of {@link encodeSections}: its sections up to the first
 * one that does not check (bad CRC, overrun); within a section, the
 * entries {@link decodeBlock} accepts.
 */
export function decodeSections(block: Uint8Array): LogSection[] {
  const v = new DataView(block.buffer, block.byteOffset, block.byteLength);
  const out: LogSection[] = [];
  let o = 0;
  while (o + HEADER + 4 <= block.length) {
    const nameLen = v.getUint16(o + 4, true);
    const b = o + HEADER + nameLen;
    if (b + 4 > block.length) break;
    const end = b + 4 + v.getUint32(b, true);
    if (end > block.length) break;
    if (crc32c(block.subarray(o + 4, end)) !== v.getUint32(o, true)) break;
    out.push({
      dir: dec.decode(block.subarray(o + HEADER, b)),
      entries: decodeBlock(block.subarray(b + 4, end)).entries,
    });
    o = end;
  }
  return out;
}

/**
 * Sorts a server log's blocks by tablet (BigTable's sort of a dead
 * server's log, HBase's log splitting): each tablet's entries, in log
 * order. Pure; the splitter writes each tablet's list as its piece.
 */
export function splitByTablet(
  blocks: Iterable<Uint8Array>,
): Map<string, LogEntry[]> {
  const out = new Map<string, LogEntry[]>();
  for (const block of blocks) {
    for (const s of decodeSections(block)) {
      let list = out.get(s.dir);
      if (list === undefined) out.set(s.dir, list = []);
      for (const e of s.entries) list.push(e);
    }
  }
  return out;
}
