/**
 * `snapshot_codec.ts`: a memory tablet's rows as one byte string (pure).
 *
 * ```
 * "STRMSNP1" | clock u64 | rows u32 | row*
 * row  = key (u32 len, bytes) | deadline u64 | cells u32 | cell*
 * cell = family (u16 len, utf8) | qualifier (u32 len) | timestamp u64 | value (u32 len)
 * ```
 * big-endian; decoding checks every length, so a cut or corrupt file is an
 * error, never garbage rows.
 */
import { fromLatin1, latin1, type MemRow } from "./memory_tablet.ts";

const MAGIC = new TextEncoder().encode("STRMSNP1");
const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

/** A decoded snapshot. */
export interface Snapshot {
  /** The tablet's last write timestamp. */
  clock: number;
  rows: MemRow[];
}

/** Encodes rows and the clock. */
export function encodeSnapshot(
  rows: Iterable<MemRow>,
  clock: number,
): Uint8Array {
  const list = [...rows];
  let size = MAGIC.length + 12;
  for (const r of list) {
    size += 16 + r.k.length;
    for (const c of r.cells) {
      size += 18 + c.family.length * 3 + c.qualifier.length + c.value.length;
    }
  }
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  out.set(MAGIC);
  let p = MAGIC.length;
  const u32 = (n: number) => {
    v.setUint32(p, n);
    p += 4;
  };
  const u64 = (n: number) => {
    v.setBigUint64(p, BigInt(n));
    p += 8;
  };
  const bytes = (b: Uint8Array) => {
    out.set(b, p);
    p += b.length;
  };
  u64(clock);
  u32(list.length);
  for (const r of list) {
    u32(r.k.length);
    bytes(fromLatin1(r.k));
    u64(r.deadline);
    u32(r.cells.length);
    for (const c of r.cells) {
      const f = enc.encode(c.family);
      v.setUint16(p, f.length);
      p += 2;
      bytes(f);
      u32(c.qualifier.length);
      bytes(c.qualifier);
      u64(c.timestamp);
      u32(c.value.length);
      bytes(c.value);
    }
  }
  return out.subarray(0, p);
}

/** Decodes a snapshot. @throws Error when it is cut or malformed. */
export function decodeSnapshot(data: Uint8Array): Snapshot {
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let p = 0;
  const need = (n: number) => {
    if (p + n > data.length) throw new Error("the snapshot is cut short");
  };
  need(MAGIC.length);
  for (let i = 0; i < MAGIC.length; i++) {
    if (data[i] !== MAGIC[i]) throw new Error("not a memory tablet snapshot");
  }
  p = MAGIC.length;
  const u32 = () => {
    need(4);
    const n = v.getUint32(p);
    p += 4;
    return n;
  };
  const u64 = () => {
    need(8);
    const n = Number(v.getBigUint64(p));
    p += 8;
    return n;
  };
  const bytes = (n: number) => {
    need(n);
    const b = data.slice(p, p + n);
    p += n;
    return b;
  };
  const clock = u64();
  const n = u32();
  const rows: MemRow[] = [];
  for (let i = 0; i < n; i++) {
    const k = latin1(bytes(u32()));
    const deadline = u64();
    const nc = u32();
    const cells = [];
    for (let j = 0; j < nc; j++) {
      need(2);
      const fl = v.getUint16(p);
      p += 2;
      const family = dec.decode(bytes(fl));
      const qualifier = bytes(u32());
      const timestamp = u64();
      const value = bytes(u32());
      cells.push({ family, qualifier, timestamp, value });
    }
    rows.push({ k, cells, deadline });
  }
  if (p !== data.length) throw new Error("trailing bytes after the snapshot");
  return { clock, rows };
}
