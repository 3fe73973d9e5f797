/**
 * Deep equality on the codec's wire form (what `MessageType.toWire` returns
 * and CBOR decodes back): this is how the differential encoding decides
 * whether a field changed.
 *
 * - primitives compare with `Object.is` (so `NaN` equals `NaN`, `0` differs
 *   from `-0`, `null` differs from `undefined`): exactly what CBOR keeps;
 * - arrays (including positional structures of nested objects) are equal
 *   when they have the same length and deep-equal items;
 * - byte arrays are equal when their bytes are; other typed arrays by
 *   element;
 * - plain objects (records, maps decoded as objects) are equal when they
 *   have the same keys in the same order (CBOR preserves order) with
 *   deep-equal values;
 * - dates compare by time. Anything else compares by identity.
 *
 * A field is one top-level position: a changed item deep inside an array
 * makes the whole field resend (whole-field granularity).
 */
export function wireEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (
    typeof a !== "object" || typeof b !== "object" || a === null ||
    b === null
  ) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) {
      if (!wireEqual(a[i], b[i])) return false;
    }
    return true;
  }
  if (Array.isArray(b)) return false;
  if (ArrayBuffer.isView(a)) {
    if (!ArrayBuffer.isView(b)) return false;
    // A Buffer (what cbor-x decodes bytes into) equals a Uint8Array.
    const bytesA = a instanceof Uint8Array, bytesB = b instanceof Uint8Array;
    if (bytesA !== bytesB || (!bytesA && a.constructor !== b.constructor)) {
      return false;
    }
    const x = a as unknown as ArrayLike<unknown>;
    const y = b as unknown as ArrayLike<unknown>;
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) {
      if (!Object.is(x[i], y[i])) return false;
    }
    return true;
  }
  if (a instanceof Date || b instanceof Date) {
    return a instanceof Date && b instanceof Date &&
      Object.is(a.getTime(), b.getTime());
  }
  const pa = Object.getPrototypeOf(a);
  if (pa !== Object.getPrototypeOf(b)) return false;
  if (pa !== Object.prototype && pa !== null) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (let i = 0; i < ka.length; i++) {
    const k = ka[i]!;
    if (k !== kb[i]) return false;
    if (
      !wireEqual(
        (a as Record<string, unknown>)[k],
        (b as Record<string, unknown>)[k],
      )
    ) return false;
  }
  return true;
}
