import { Encoder } from "cbor-x";

// The codec's own CBOR options (see packages/codec/message.ts): plain CBOR,
// no record extension, so no state hides in the encoder between messages.
const encoder = new Encoder({
  useRecords: false,
  mapsAsObjects: true,
  tagUint8Array: false,
});

/**
 * Encodes a wire-form value (what `MessageType.toWire` returns) to CBOR
 * bytes, identical to what the codec's `MessageType.encode` produces for
 * the message. Decode with the codec's `decodeCbor`.
 */
export function encodeWire(wire: unknown): Uint8Array {
  return encoder.encode(wire);
}

/**
 * An independent copy of a wire-form value, so that a caller mutating a
 * message after sending (or after receiving) it cannot change the base a
 * differential encoding compares against.
 */
export function cloneWire(value: unknown): unknown {
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) return value.map(cloneWire);
  // A copy, never a view: cbor-x hands out Buffers, whose slice() shares memory.
  if (value instanceof Uint8Array) return new Uint8Array(value);
  if (value instanceof Date) return new Date(value.getTime());
  if (ArrayBuffer.isView(value)) return structuredClone(value);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = cloneWire(v);
  return out;
}
