/**
 * The byte strings of a request (row keys, qualifiers, values), carved
 * from a shared slab instead of one `Uint8Array` each. Allocating a
 * typed array in Deno costs ~0.35 µs even for 8 bytes (its own buffer,
 * which the GC then tracks and frees), where a view into a slab costs
 * ~0.04 µs; `TextEncoder.encode` also crosses into Rust and allocates
 * there. A put carries three such strings.
 *
 * The slab is never reused: a new one is taken when it is full, and an
 * old one lives while any view into it does. So a view must not be kept
 * long (it would hold its whole slab): the tablets copy what they store,
 * and the load meter copies the keys it samples.
 */
import { type Encoding, toBytes } from "../shared/wire.ts";

/** Bytes a slab holds; larger strings get their own array. */
const SLAB_BYTES = 64 * 1024;
/** Strings up to this long are tried as ASCII in JS first (no call into Rust). */
const SHORT = 32;

const enc = new TextEncoder();
let slab = new Uint8Array(SLAB_BYTES);
let used = 0;

/** Room for `n` bytes in the current slab (a new slab when it lacks it). */
function room(n: number): void {
  if (used + n > slab.length) {
    slab = new Uint8Array(SLAB_BYTES);
    used = 0;
  }
}

/**
 * `s` as UTF-8, the bytes `TextEncoder.encode` gives (a lone surrogate is
 * U+FFFD), as a view into the slab (or an array of its own past a
 * quarter slab).
 */
export function utf8View(s: string): Uint8Array {
  const n = s.length;
  // Each UTF-16 unit is at most 3 bytes of UTF-8 (a pair: 4 for 2).
  if (n * 3 > SLAB_BYTES >> 2) return enc.encode(s);
  if (n <= SHORT) {
    room(n);
    const at = used;
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) break;
      slab[at + i] = c;
    }
    if (i === n) {
      used += n;
      return slab.subarray(at, used);
    }
  }
  room(n * 3);
  const { written } = enc.encodeInto(s, slab.subarray(used));
  const at = used;
  used += written;
  return slab.subarray(at, used);
}

/**
 * {@link toBytes} (same bytes, same refusals), its UTF-8 as a slab view.
 * @throws EdgeError `bad_request` for invalid base64, `too_large` over `max`.
 */
export function requestBytes(
  s: string,
  encoding: Encoding,
  what: string,
  max: number,
): Uint8Array {
  // UTF-8 is never shorter than the string's UTF-16 units, so a string
  // longer than `max` is refused by toBytes, which names its byte length.
  if (encoding !== "utf8" || s.length > max) {
    return toBytes(s, encoding, what, max);
  }
  const b = utf8View(s);
  return b.length > max ? toBytes(s, encoding, what, max) : b;
}
