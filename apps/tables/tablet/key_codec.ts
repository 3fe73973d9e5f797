/**
 * How cells map onto the LSM store's sorted byte keys. Row keys and
 * qualifiers are escaped order-preservingly (0x00 → 0x00 0xff, then the
 * terminator 0x00 0x01), so the encoded keys sort by row bytes, then
 * family, qualifier and timestamp descending, a row's entries are
 * contiguous, and a row range or row prefix is one LSM key range:
 *
 * ```
 * row marker     esc(row) 00
 * family marker  esc(row) family 00 00
 * column marker  esc(row) family 00 01 esc(qualifier) 00
 * cell           esc(row) family 00 01 esc(qualifier) 01 ~timestamp(8 bytes)
 * ```
 *
 * Family names never contain 0x00 and start at 0x30 or above, so a row's
 * marker sorts before its families, a family's marker before its columns
 * and a column's marker before its cells: one pass in key order sees each
 * marker before the cells it may hide. Keys starting 00 00 are never
 * produced by escaping (the empty row is refused); the tablet keeps its
 * metadata there.
 */

import type { PrefixExtractor } from "@strata/lsm";
import { tabletBytes } from "./byte_arena.ts";
import { putWords } from "./value_codec.ts";

/** Kinds of entries in the tablet's key space. */
export type EntryKind = "row" | "family" | "column" | "cell";

/** A decoded key. `rowEnd` is the length of the encoded row prefix. */
export interface ParsedKey {
  kind: EntryKind;
  rowEnd: number;
  family: string;
  qualifier: Uint8Array;
  timestamp: number;
}

/** The tablet's persisted clock high-water mark lives here (outside the row space). */
export const CLOCK_KEY = Uint8Array.of(0, 0, 0x63, 0x6c, 0x6f, 0x63, 0x6b);
/** The smallest encoded row key (above the metadata keys). */
export const ROW_SPACE_START = Uint8Array.of(0, 1);

/** Escaped bytes of `b` without the terminator (also the LSM prefix of rows starting with `b`). */
export function escapeBody(b: Uint8Array): Uint8Array {
  let zeros = 0;
  for (let i = 0; i < b.length; i++) if (b[i] === 0) zeros++;
  const out = new Uint8Array(b.length + zeros);
  let j = 0;
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    out[j++] = c;
    if (c === 0) out[j++] = 0xff;
  }
  return out;
}

/** Length of `b` escaped, terminator included. */
function escapedLength(b: Uint8Array): number {
  let n = b.length + 2;
  for (let i = 0; i < b.length; i++) if (b[i] === 0) n++;
  return n;
}

/** Writes `b` escaped and terminated at `at`; returns the index after it. */
function writeEscaped(out: Uint8Array, at: number, b: Uint8Array): number {
  let j = at;
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    out[j++] = c;
    if (c === 0) out[j++] = 0xff;
  }
  out[j++] = 0;
  out[j++] = 1;
  return j;
}

/** Writes the family name and its 0x00 at `at`; returns the index after it. */
function writeFamily(out: Uint8Array, at: number, family: string): number {
  for (let i = 0; i < family.length; i++) out[at + i] = family.charCodeAt(i);
  out[at + family.length] = 0;
  return at + family.length + 1;
}

/**
 * `esc(row)`, then (with `family`) `family 00`, then (with `qualifier`)
 * `01 esc(qualifier)`, then `extra` zeroed bytes for the caller to fill.
 */
function build(
  row: Uint8Array,
  family: string | undefined,
  qualifier: Uint8Array | undefined,
  extra: number,
): Uint8Array {
  let n = escapedLength(row) + extra;
  if (family !== undefined) n += family.length + 1;
  if (qualifier !== undefined) n += 1 + escapedLength(qualifier);
  const out = tabletBytes.alloc(n);
  let j = writeEscaped(out, 0, row);
  if (family !== undefined) j = writeFamily(out, j, family);
  if (qualifier !== undefined) {
    out[j++] = 1;
    writeEscaped(out, j, qualifier);
  }
  return out;
}

/**
 * Reads an escaped field at `at`; returns the bytes (a view into `key`
 * when the field holds no 0x00, which is the common case) and sets
 * {@link after} to the index after its terminator.
 */
function unescapeAt(key: Uint8Array, at: number): Uint8Array {
  // Plain loops: for short keys they beat a call of the built-in indexOf.
  let z = at;
  const n = key.length;
  while (z < n && key[z] !== 0) z++;
  if (z + 1 < n && key[z + 1] === 1) {
    after = z + 2;
    // An empty field (a column's usual qualifier) needs no view.
    return z === at ? NONE : key.subarray(at, z);
  }
  const out: number[] = [];
  let i = at;
  while (i < n) {
    const c = key[i]!;
    if (c !== 0) {
      out.push(c);
      i++;
      continue;
    }
    const m = key[i + 1];
    if (m === 0xff) out.push(0);
    else if (m === 1) {
      after = i + 2;
      return Uint8Array.from(out);
    } else break;
    i += 2;
  }
  throw new Error(`malformed tablet key: bad escape at byte ${i}`);
}

/** Set by {@link unescapeAt}: the index after the field's terminator. */
let after = 0;

/** The index after the terminator of the escaped field at `at`. */
function skipEscaped(key: Uint8Array, at: number): number {
  const n = key.length;
  for (let i = at; i + 1 < n; i++) {
    if (key[i] !== 0) continue;
    const m = key[i + 1];
    if (m === 1) return i + 2;
    if (m !== 0xff) break;
    i++;
  }
  throw new Error("malformed tablet key: bad escape");
}

/**
 * The LSM store's prefix extractor for a tablet: a key's encoded row
 * (`esc(row) 00 01`), so each SSTable holds a Bloom filter of its rows and
 * a row read skips the tables without the row. Keys outside the row space
 * (the metadata keys) and prefixes shorter than a whole row (a row-prefix
 * scan's `esc(prefix)`) have none. Every key starting with an encoded row
 * is an entry of that row (an escaped row holds no `00 01`), as the
 * extractor's contract asks.
 */
export const ROW_EXTRACTOR: PrefixExtractor = {
  name: "strata.tables.row.v1",
  prefixOf(key: Uint8Array): Uint8Array | undefined {
    const n = key.length;
    for (let i = 0; i + 1 < n; i++) {
      if (key[i] !== 0) continue;
      const m = key[i + 1];
      if (m === 1) return i === 0 ? undefined : key.subarray(0, i + 2);
      if (m !== 0xff) return undefined;
      i++;
    }
    return undefined;
  },
};

/** The encoded row: `esc(row) 00 01`; every entry of the row starts with it. */
export function rowPrefix(row: Uint8Array): Uint8Array {
  return build(row, undefined, undefined, 0);
}

/** Key of the row's deletion marker. */
export function rowMarkerKey(row: Uint8Array): Uint8Array {
  return build(row, undefined, undefined, 1);
}

/** Prefix of every entry of one family of a row. */
export function familyPrefix(row: Uint8Array, family: string): Uint8Array {
  return build(row, family, undefined, 0);
}

/** Key of a family's deletion marker in a row. */
export function familyMarkerKey(row: Uint8Array, family: string): Uint8Array {
  return build(row, family, undefined, 1);
}

/** Prefix of every entry of one column of a row. */
export function columnPrefix(
  row: Uint8Array,
  family: string,
  qualifier: Uint8Array,
): Uint8Array {
  return build(row, family, qualifier, 0);
}

/** Key of a column's deletion marker. */
export function columnMarkerKey(
  row: Uint8Array,
  family: string,
  qualifier: Uint8Array,
): Uint8Array {
  return build(row, family, qualifier, 1);
}

/** Key of one version of a cell; newer timestamps sort first. */
export function cellKey(
  row: Uint8Array,
  family: string,
  qualifier: Uint8Array,
  timestamp: number,
): Uint8Array {
  const out = build(row, family, qualifier, 9);
  const at = out.length - 9;
  out[at] = 1;
  // Bitwise complement of the 64-bit big-endian timestamp: descending order.
  putWords(out, at + 1, ~Math.floor(timestamp / 2 ** 32), ~(timestamp >>> 0));
  return out;
}

/**
 * True when `a` and `b` are keys of the same encoded row: their first
 * `aEnd` and `bEnd` bytes, the rows, are equal (`b` undefined: no row).
 */
export function sameRow(
  a: Uint8Array,
  aEnd: number,
  b: Uint8Array | undefined,
  bEnd: number,
): boolean {
  if (b === undefined || aEnd !== bEnd) return false;
  for (let i = aEnd - 1; i >= 0; i--) if (a[i] !== b[i]) return false;
  return true;
}

/** Decodes the row key of an encoded entry key, or of a row prefix (a copy). */
export function decodeRow(key: Uint8Array): Uint8Array {
  let z = 0;
  const n = key.length;
  while (z < n && key[z] !== 0) z++;
  if (z + 1 < n && key[z + 1] === 1) {
    // No escape (the common case): the bytes before the terminator,
    // copied straight from the key (no view of it in between: each view
    // is an object for the garbage collector).
    const out = tabletBytes.alloc(z);
    if (z > 128) out.set(key.subarray(0, z));
    else for (let i = 0; i < z; i++) out[i] = key[i]!;
    return out;
  }
  return tabletBytes.copy(unescapeAt(key, 0));
}

/**
 * Decodes an entry key. The qualifier is a view into `key` when it holds
 * no 0x00 byte (copy it to keep it past changes to `key`). With `into`,
 * that object is filled and returned (a reader of many keys makes one).
 *
 * @throws Error for bytes the encoder cannot produce (a corrupt store).
 */
export function parseKey(key: Uint8Array, into?: ParsedKey): ParsedKey {
  const rowEnd = skipEscaped(key, 0);
  const n = key.length;
  if (rowEnd === n - 1 && key[rowEnd] === 0) {
    return fill(into, "row", rowEnd, "", NONE, 0);
  }
  let z = rowEnd;
  while (z < n && key[z] !== 0) z++;
  if (z + 1 >= n) throw new Error("malformed tablet key");
  const family = familyName(key, rowEnd, z);
  if (key[z + 1] === 0) return fill(into, "family", rowEnd, family, NONE, 0);
  const qualifier = unescapeAt(key, z + 2);
  const q = after;
  if (q === n - 1 && key[q] === 0) {
    return fill(into, "column", rowEnd, family, qualifier, 0);
  }
  if (q + 9 !== n || key[q] !== 1) {
    throw new Error("malformed tablet key");
  }
  const hi = (key[q + 1]! << 24 | key[q + 2]! << 16 | key[q + 3]! << 8 |
    key[q + 4]!) >>> 0;
  const lo = (key[q + 5]! << 24 | key[q + 6]! << 16 | key[q + 7]! << 8 |
    key[q + 8]!) >>> 0;
  // Bitwise complement of the 64-bit big-endian timestamp.
  const timestamp = (~hi >>> 0) * 2 ** 32 + (~lo >>> 0);
  return fill(into, "cell", rowEnd, family, qualifier, timestamp);
}

function fill(
  into: ParsedKey | undefined,
  kind: EntryKind,
  rowEnd: number,
  family: string,
  qualifier: Uint8Array,
  timestamp: number,
): ParsedKey {
  if (into === undefined) {
    return { kind, rowEnd, family, qualifier, timestamp };
  }
  into.kind = kind;
  into.rowEnd = rowEnd;
  into.family = family;
  into.qualifier = qualifier;
  into.timestamp = timestamp;
  return into;
}

const NONE = new Uint8Array(0);

/** Family names decoded lately: a table has a few, so most keys hit. */
const families: string[] = [];

/** The family name in `key[from, to)` (short ASCII), interned. */
function familyName(key: Uint8Array, from: number, to: number): string {
  const len = to - from;
  for (const f of families) {
    if (f.length !== len) continue;
    let i = 0;
    while (i < len && f.charCodeAt(i) === key[from + i]) i++;
    if (i === len) return f;
  }
  const f = String.fromCharCode.apply(
    null,
    key.subarray(from, to) as unknown as number[],
  );
  if (families.length >= 16) families.pop();
  families.unshift(f);
  return f;
}
