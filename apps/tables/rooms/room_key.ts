/**
 * `room_key.ts`: which key of the `strata.rooms` table a room lives at. The
 * tablet server serving that key is the room's home. A room name is
 * prefixed with 4 hex digits of its hash, so rooms spread evenly over the
 * table's pre-split tablets whatever their names look like.
 */
import { z } from "zod";

/** The table whose tablets decide every room's home (no rows are written). */
export const ROOMS_TABLE = "strata.rooms";
/** Its one family (the table holds no data; a schema needs a family). */
export const ROOMS_FAMILY = "m";
/** Split keys of the table: 8 tablets over the hash prefix. */
export const ROOMS_SPLITS: readonly string[] = [
  "2",
  "4",
  "6",
  "8",
  "a",
  "c",
  "e",
];

const encoder = new TextEncoder();

/** A room name: 1..1024 bytes of UTF-8 text. */
export const roomNameSchema = z.string().min(1).refine(
  (s) => encoder.encode(s).length <= 1024,
  "a room name is at most 1024 bytes",
);

/**
 * FNV-1a over the UTF-8 bytes of `s`, then murmur3's finalizer (FNV's
 * high bits alone are uneven over names that differ in their last
 * characters, such as `room-1`, `room-2`).
 */
export function roomHash(s: string): number {
  let h = 0x811c9dc5;
  for (const b of encoder.encode(s)) {
    h ^= b;
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The row key of `room` in {@link ROOMS_TABLE}: `hhhh/room`. */
export function homeKey(room: string): Uint8Array {
  const prefix = (roomHash(room) >>> 16).toString(16).padStart(4, "0");
  return encoder.encode(`${prefix}/${room}`);
}
