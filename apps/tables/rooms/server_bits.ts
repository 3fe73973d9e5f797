/**
 * `server_bits.ts`: a compact set of small server numbers, the per-room
 * "which servers have subscribers" of a room's home. Up to 32 servers it
 * is one number (a 32-bit mask, no allocation); past that a Uint32Array
 * of words. Values are immutable: every change returns the new set.
 */

/** A set of server numbers (0, 1, 2, …). */
export type ServerBits = number | Uint32Array;

/** The empty set. */
export const NO_SERVERS: ServerBits = 0;

const word = (b: ServerBits, w: number): number =>
  typeof b === "number" ? (w === 0 ? b : 0) : (b[w] ?? 0);

/** Whether server `i` is in `b`. */
export function hasServer(b: ServerBits, i: number): boolean {
  return ((word(b, i >>> 5) >>> (i & 31)) & 1) === 1;
}

/** `b` with server `i` added. */
export function addServer(b: ServerBits, i: number): ServerBits {
  if (i < 32 && typeof b === "number") return (b | (1 << i)) >>> 0;
  const words = Math.max(i >>> 5, typeof b === "number" ? 0 : b.length - 1) +
    1;
  const out = new Uint32Array(words);
  if (typeof b === "number") out[0] = b;
  else out.set(b);
  out[i >>> 5] = (out[i >>> 5]! | (1 << (i & 31))) >>> 0;
  return out;
}

/** `b` without server `i`. */
export function removeServer(b: ServerBits, i: number): ServerBits {
  if (!hasServer(b, i)) return b;
  if (typeof b === "number") return (b & ~(1 << i)) >>> 0;
  const out = b.slice();
  out[i >>> 5] = (out[i >>> 5]! & ~(1 << (i & 31))) >>> 0;
  // Back to one number when only the first word is left.
  return out.every((w, k) => k === 0 || w === 0) ? out[0]! : out;
}

/** Whether `b` is empty. */
export function noServers(b: ServerBits): boolean {
  return typeof b === "number" ? b === 0 : b.every((w) => w === 0);
}

/** The union of two sets. */
export function unionServers(a: ServerBits, b: ServerBits): ServerBits {
  if (typeof a === "number" && typeof b === "number") return (a | b) >>> 0;
  const n = Math.max(
    typeof a === "number" ? 1 : a.length,
    typeof b === "number" ? 1 : b.length,
  );
  const out = new Uint32Array(n);
  for (let w = 0; w < n; w++) out[w] = (word(a, w) | word(b, w)) >>> 0;
  return out;
}

/** The servers of `b`, ascending. */
export function serversOf(b: ServerBits): number[] {
  const out: number[] = [];
  const n = typeof b === "number" ? 1 : b.length;
  for (let w = 0; w < n; w++) {
    let x = word(b, w);
    while (x !== 0) {
      const low = 31 - Math.clz32(x & -x);
      out.push(w * 32 + low);
      x = (x & ~(1 << low)) >>> 0;
    }
  }
  return out;
}
