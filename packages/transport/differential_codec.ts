import { createHash } from "node:crypto";
import {
  CodecError,
  decodeCbor,
  type MessageSet,
  type MessageType,
} from "@strata/codec";
import type { z } from "zod";
import {
  bitmapBytes,
  countBits,
  hasBit,
  onlyFirstBits,
  setBit,
} from "./presence_bitmap.ts";
import { TransportError } from "./transport_error.ts";
import { wireEqual } from "./wire_equality.ts";
import { cloneWire, encodeWire } from "./wire_cbor.ts";

/**
 * Differential message encoding: per connection and per message type, each
 * side keeps the last message of that type it sent (encoder) or received
 * (decoder), in the codec's wire form (a top-level object is a positional
 * array, so field `i` is array position `i`). A new message travels either
 *
 * - whole: the codec's CBOR bytes, exactly `type.encode(message)`; or
 * - as a diff: a presence bitmap of `ceil(n / 8)` bytes, `n` being the
 *   base's field count, with bit `i` set when field `i` changed, then (when
 *   any changed) one CBOR array of the changed fields' wire values in field
 *   order. An unchanged message of up to 8 fields costs one byte.
 *
 * Fields compare with {@link wireEqual} (whole-field granularity: a nested
 * object or array that differs anywhere is resent whole). A diff is only
 * sent when the message's wire form is an array of the same length as the
 * base and at least one field is unchanged; otherwise the whole message
 * goes, which also resets the base. The frame flag that marks a diff lives
 * in the layer above (see `FRAME_FLAGS.differential`).
 *
 * Both sides start empty on every new connection, so a reconnect resets the
 * state; a diff that arrives without a base, or whose bitmap or values do
 * not fit the base, is a `protocol_error`, never a wrong message.
 */
export interface DifferentialOptions {
  /**
   * Whether messages of this kind may travel as diffs; both peers must
   * agree. Default: every kind.
   */
  enabled?: (typeName: string) => boolean;
}

/**
 * Normalizes a session's `differential` setting: `true` or unset is every
 * kind, `false` none, options as given.
 */
export function differentialOptions(
  setting: boolean | DifferentialOptions | undefined,
): DifferentialOptions {
  if (setting === false) return { enabled: () => false };
  return setting === true || setting === undefined ? {} : setting;
}

/**
 * A short text naming which kinds of `set` travel as diffs under `options`:
 * `*` (all), `-` (none) or a hash of the enabled names. Peers exchange it in
 * the handshake, so a mismatch is refused there with both settings named
 * instead of surfacing as a broken diff at the first message.
 */
export function differentialSignature(
  // deno-lint-ignore no-explicit-any
  set: Pick<MessageSet<any>, "types">,
  options: DifferentialOptions,
): string {
  const enabled = options.enabled ?? (() => true);
  const names = set.types.map((t) => t.name).filter((n) => enabled(n));
  if (names.length === set.types.length) return "*";
  if (names.length === 0) return "-";
  return createHash("sha256").update(names.join("\n")).digest("hex").slice(
    0,
    16,
  );
}

/** An encoded message body that is not yet part of the state. */
export interface EncodedBody {
  /** The bytes to put in the frame's payload. */
  bytes: Uint8Array;
  /** True when `bytes` is a diff against the previous message of the kind. */
  differential: boolean;
  /**
   * Makes this message the base for the next one. Call it only once the
   * frame is certain to be sent (after its size check), so that a frame
   * that is never written cannot leave the peers' states apart.
   */
  commit(): void;
}

/** Sending half: one per connection. */
export class DifferentialEncoder {
  readonly #bases = new Map<number, unknown[]>();
  readonly #enabled: (typeName: string) => boolean;

  /** @param options which kinds may be diffed. */
  constructor(options: DifferentialOptions = {}) {
    this.#enabled = options.enabled ?? (() => true);
  }

  /** Forgets every base (a new connection). */
  reset(): void {
    this.#bases.clear();
  }

  /** Forgets the base of one kind (a whole message of it went another way). */
  forget(typeId: number): void {
    this.#bases.delete(typeId);
  }

  /**
   * Encodes `message` of kind `type` (whose id on this connection is
   * `typeId`), as a diff when that is possible and smaller.
   */
  encode<S extends z.ZodType>(
    typeId: number,
    type: MessageType<string, S>,
    message: z.output<S>,
  ): EncodedBody {
    // A kind that is never diffed goes straight to its codec (no wire form
    // built twice).
    const wire = this.#enabled(type.name) ? type.toWire(message) : undefined;
    if (!Array.isArray(wire)) {
      return {
        bytes: type.encode(message),
        differential: false,
        commit: () => this.#bases.delete(typeId),
      };
    }
    const base = this.#bases.get(typeId);
    const n = wire.length;
    if (base !== undefined && base.length === n) {
      let changed: unknown[] | undefined;
      let changedAt: number[] | undefined;
      for (let i = 0; i < n; i++) {
        const a = base[i];
        const b = wire[i];
        // Primitives settle here; only objects go to the deep comparison.
        if (a === b && (a !== 0 || Object.is(a, b))) continue;
        if (typeof a === "object" && typeof b === "object" && wireEqual(a, b)) {
          continue;
        }
        if (a !== a && b !== b) continue; // NaN
        (changed ??= []).push(b);
        (changedAt ??= []).push(i);
      }
      if (changed === undefined || changed.length < n) {
        const mapBytes = bitmapBytes(n);
        const values = changed ? encodeWire(changed) : undefined;
        const bytes = new Uint8Array(mapBytes + (values?.length ?? 0));
        for (const i of changedAt ?? []) setBit(bytes, i);
        if (values) bytes.set(values, mapBytes);
        return {
          bytes,
          differential: true,
          commit: () => {
            if (!changed || !changedAt) return;
            for (let j = 0; j < changedAt.length; j++) {
              base[changedAt[j]!] = cloneWire(changed[j]);
            }
          },
        };
      }
    }
    return {
      // The codec's own bytes, so a whole message is exactly type.encode().
      bytes: type.encode(message),
      differential: false,
      commit: () => this.#bases.set(typeId, wire.map(cloneWire)),
    };
  }
}

/** Receiving half: one per connection. */
export class DifferentialDecoder {
  readonly #bases = new Map<number, unknown[]>();
  readonly #enabled: (typeName: string) => boolean;

  /** @param options which kinds may be diffed; must match the sender's. */
  constructor(options: DifferentialOptions = {}) {
    this.#enabled = options.enabled ?? (() => true);
  }

  /** Forgets every base (a new connection). */
  reset(): void {
    this.#bases.clear();
  }

  /**
   * Decodes a frame body of kind `type` into the whole message. With
   * `owned`, `bytes` are the caller's own copy, never reused (a frame
   * decoder's payload): byte strings in the message are views of them
   * instead of a second copy.
   *
   * @throws TransportError `protocol_error` for a diff without a base, a
   *   diff of a kind that is not diffed here, or a malformed diff;
   *   `frame_error` (cause: CodecError) when the bytes or the rebuilt
   *   message are invalid.
   */
  decode<S extends z.ZodType>(
    typeId: number,
    type: MessageType<string, S>,
    bytes: Uint8Array,
    differential: boolean,
    owned = false,
  ): z.output<S> {
    const enabled = this.#enabled(type.name);
    try {
      if (!differential) {
        const wire = decodeCbor(bytes, !owned);
        const message = type.fromWire(wire);
        if (enabled && Array.isArray(wire)) {
          this.#bases.set(typeId, wire.map(cloneWire));
        } else this.#bases.delete(typeId);
        return message;
      }
      if (!enabled) {
        throw new TransportError(
          "protocol_error",
          `${type.name} arrived as a diff but differential encoding is off for it here`,
        );
      }
      const base = this.#bases.get(typeId);
      if (base === undefined) {
        throw new TransportError(
          "protocol_error",
          `${type.name} arrived as a diff but no previous ${type.name} was received on this connection`,
        );
      }
      const n = base.length;
      const bitmapEnd = bitmapBytes(n);
      if (bitmapEnd > bytes.length) {
        throw new CodecError("truncated", "diff ends inside its bitmap");
      }
      const bitmap = bytes.subarray(0, bitmapEnd);
      if (!onlyFirstBits(bitmap, n)) {
        throw new TransportError(
          "protocol_error",
          `${type.name} diff marks fields past its base's ${n}`,
        );
      }
      const count = countBits(bitmap, n);
      const changed = count === 0 && bytes.length === bitmapEnd
        ? []
        : decodeCbor(bytes.subarray(bitmapEnd), !owned);
      if (!Array.isArray(changed) || changed.length !== count) {
        throw new TransportError(
          "protocol_error",
          `${type.name} diff carries a different number of fields than its bitmap marks`,
        );
      }
      const wire = base.slice();
      let j = 0;
      for (let i = 0; i < n; i++) {
        if (hasBit(bitmap, i)) wire[i] = changed[j++];
      }
      const message = type.fromWire(wire);
      // Only now does the base move: a rejected diff changes nothing.
      for (let i = 0; i < n; i++) {
        if (hasBit(bitmap, i)) base[i] = cloneWire(wire[i]);
      }
      return message;
    } catch (e) {
      if (e instanceof CodecError) {
        throw TransportError.fromCodec(e, `${type.name} body`);
      }
      throw e;
    }
  }
}
